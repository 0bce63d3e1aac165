/**
 * Every rank computes in rank 0's choice under --precision auto (src/train/engine/precision_agreement.ts):
 * rank 0 decides and publishes it in the store, the others take it whatever their own CPU would
 * choose; a rank that waits in vain names rank 0. An elastic run takes the first member's choice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreTimeoutError } from '../../../src/comm/store/protocol.js';
import { PRECISION_KEY, SHARED_PRECISION_KEY, agreePrecision, deviceBf16Key, runnableByEveryRank, sharedPrecision } from '../../../src/train/engine/precision_agreement.js';
import type { AutoPrecision } from '../../../src/train/engine/precision_auto.js';
import { resolveAutoPrecision } from '../../../src/train/engine/precision_auto.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { TimeoutError } from '../../../src/util/errors.js';
import { type TrainFlags, clusterSignature, configFrom } from '../../../src/launch/worker_flags.js';

/** The store's get/set/compareSet over a map (a get of a missing key times out, as the store's does). */
function memoryStore() {
  const keys = new Map<string, Uint8Array>();
  return {
    keys,
    async set(key: string, value: string) { keys.set(key, new TextEncoder().encode(value)); },
    async get(key: string, timeoutMs?: number) {
      const v = keys.get(key);
      if (!v) throw new StoreTimeoutError(`get ${key}`, timeoutMs ?? 0, [key]);
      return v;
    },
    async compareSet(key: string, _expected: null, desired: string) {
      if (!keys.has(key)) keys.set(key, new TextEncoder().encode(desired));
      return keys.get(key)!;
    },
  };
}

const auto = (): TrainConfig => ({ ...defaultConfig('mlp'), precision: 'auto' });

describe('--precision auto across ranks', () => {
  it('rank 0 decides and publishes; another rank takes rank 0\'s choice and why, not its own', async () => {
    const store = memoryStore();
    const zero = auto();
    await agreePrecision({ rank: 0, config: zero, store, timeoutMs: 100 });
    assert.ok(zero.precision === 'fp32' || zero.precision === 'bf16');
    assert.deepEqual(zero.precisionAuto, resolveAutoPrecision());
    // Rank 0 of another machine chose bf16: rank 1 follows it, whatever this CPU measures.
    const theirs = { precision: 'bf16', instructions: ['amx_bf16'], fp32Ms: 3, bf16Ms: 1, reason: 'rank 0\'s' };
    await store.set(PRECISION_KEY, JSON.stringify(theirs));
    const one = auto();
    await agreePrecision({ rank: 1, config: one, store, timeoutMs: 100 });
    assert.equal(one.precision, 'bf16');
    assert.deepEqual(one.precisionAuto, theirs);
  });

  it('a restarted rank 0 under a store that outlived it keeps the run\'s first choice', async () => {
    const store = memoryStore();
    const first = { precision: 'bf16', instructions: ['amx_bf16'], fp32Ms: 3, bf16Ms: 1, reason: 'before the restart' };
    await store.set(PRECISION_KEY, JSON.stringify(first));
    const zero = auto();
    await agreePrecision({ rank: 0, config: zero, store, timeoutMs: 100 });
    assert.deepEqual([zero.precision, zero.precisionAuto], ['bf16', first]);
  });

  it('the cluster signature compares the precision asked for (fp32 as before it existed), early enough to show in a refusal', () => {
    const flags = (precision?: 'fp32' | 'bf16' | 'auto') => ({ model: 'mlp', timeout: 60, checksumEvery: 100, ...(precision ? { precision } : {}) }) as unknown as TrainFlags;
    const sig = (p?: 'fp32' | 'bf16' | 'auto') => clusterSignature(configFrom(flags(p), 1), flags(p));
    assert.equal(sig('fp32'), sig());
    assert.notEqual(sig('bf16'), sig());
    assert.notEqual(sig('auto'), sig('bf16'));
    assert.ok(sig('bf16').indexOf('precision bf16') < 57, sig('bf16'));
  });

  it('fp32 and bf16 need no agreement (the cluster signature compares them)', async () => {
    const store = memoryStore();
    const c = { ...defaultConfig('mlp'), precision: 'bf16' as const };
    await agreePrecision({ rank: 1, config: c, store, timeoutMs: 1 });
    assert.equal(c.precision, 'bf16');
    assert.equal(store.keys.size, 0);
  });

  it('a rank that finds no choice in time names rank 0; a malformed choice is refused', async () => {
    await assert.rejects(agreePrecision({ rank: 2, config: auto(), store: memoryStore(), timeoutMs: 50 }),
      (e: unknown) => e instanceof TimeoutError && /precision auto.*waiting for rank 0/.test(e.message));
    const store = memoryStore();
    await store.set(PRECISION_KEY, JSON.stringify({ precision: 'fp8' }));
    await assert.rejects(agreePrecision({ rank: 1, config: auto(), store, timeoutMs: 50 }), /rank 0 published precision "fp8", expected fp32 or bf16/);
  });

  it('rank 0 never hands bf16 to a rank whose device cannot compute in it: each rank says what its device runs, and one GPU rank makes it fp32', async () => {
    const chose: AutoPrecision = { precision: 'bf16', instructions: ['amx_bf16'], fp32Ms: 3, bf16Ms: 1, reason: 'faster' };
    const store = memoryStore();
    // Rank 1 says what its device runs before it reads rank 0's choice (here it finds none yet).
    await assert.rejects(agreePrecision({ rank: 1, config: { ...auto(), device: 'webgpu' }, store, timeoutMs: 1 }), TimeoutError);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(await store.get(deviceBf16Key(1)))), { device: 'webgpu', bf16: false });
    await store.set(deviceBf16Key(2), JSON.stringify({ device: 'cpu', bf16: true }));
    const fp32 = await runnableByEveryRank(chose, store, 3, 50);
    assert.equal(fp32.precision, 'fp32');
    assert.equal(fp32.reason, 'rank 1 trains on webgpu, which computes in fp32 only (rank 0 alone would choose bf16: faster)');
    // Every rank runs bf16: rank 0's choice stands; an fp32 choice needs nobody's answer.
    await store.set(deviceBf16Key(1), JSON.stringify({ device: 'cpu', bf16: true }));
    assert.deepEqual(await runnableByEveryRank(chose, store, 3, 50), chose);
    const own = { ...chose, precision: 'fp32' as const };
    assert.deepEqual(await runnableByEveryRank(own, memoryStore(), 3, 1), own);
    // A rank that never says names itself in the timeout.
    await assert.rejects(runnableByEveryRank(chose, memoryStore(), 2, 20), (e: unknown) => e instanceof TimeoutError && e.ranks.includes(1));
  });

  it('elastic: the first member\'s choice is every member\'s', async () => {
    const store = memoryStore();
    const first = { precision: 'bf16', instructions: ['bf16'], fp32Ms: 2, bf16Ms: 1, reason: 'first' };
    await store.compareSet(SHARED_PRECISION_KEY, null, JSON.stringify(first));
    const later = auto();
    await sharedPrecision({ config: later, store });
    assert.deepEqual([later.precision, later.precisionAuto], ['bf16', first]);
  });
});
