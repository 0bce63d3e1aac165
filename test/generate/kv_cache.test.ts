/**
 * The cached decode against the full forward: prefill a prefix, then decode token by token; each
 * step's next-token logits equal the full causal forward's at that position within 1e-5, for GPT-2
 * and the Llama family's variants (GQA, Qwen2's biases, Qwen3's norms, Llama 3's rotary scaling, tied).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describe, it } from '../helpers/per_backend.js';
import { cachedStep } from '../../src/generate/generate.js';
import { KvCache, SequenceCache, finalCapacity, reservedPositions } from '../../src/generate/kv_cache.js';
import type { Bf16Entries } from '../../src/tensor/backend.js';
import { loadNativeBackend } from '../../src/tensor/backends/native.js';
import { backendFor, setBackend } from '../../src/tensor/dispatch.js';
import type { DeviceBuffer } from '../../src/tensor/storage.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { withComputePrecision } from '../../src/tensor/precision.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { FAMILIES, randomModel } from './families.js';

function maxDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

describe('KV cache: cached decode equals the full forward', () => {
  for (const [name, spec] of FAMILIES) {
    it(`${name}: prefill 5 then 7 decoded tokens, logits within 1e-5`, async () => {
      const model = randomModel(spec, 7);
      const rng = new Rng(3);
      const ids = Array.from({ length: 12 }, () => rng.int(61));
      const full = noGrad(() => model.forward(Tensor.from(ids, [1, ids.length]))).values() as Float32Array;
      const V = full.length / ids.length;
      const row = (t: number): Float32Array => full.subarray(t * V, (t + 1) * V);
      const cache = new KvCache();
      let logits = await cachedStep(model, ids.slice(0, 5), cache);
      assert.ok(maxDiff(logits, row(4)) <= 1e-5, `prefill: ${maxDiff(logits, row(4))}`);
      for (let t = 5; t < ids.length; t++) {
        logits = await cachedStep(model, [ids[t]], cache);
        assert.ok(maxDiff(logits, row(t)) <= 1e-5, `position ${t}: ${maxDiff(logits, row(t))}`);
      }
      assert.equal(cache.offset, 12);
    });
  }

  for (const [name, spec] of FAMILIES) {
    it(`${name}: lastPositionOnly gives each row's last logits only, within 1e-5 of the full forward's`, () => {
      const model = randomModel(spec, 11);
      const rows = [[5, 17, 2, 40, 33, 8], [9, 1, 60, 4, 4, 21]];
      const T = rows[0].length;
      const full = noGrad(() => model.forward(Tensor.from(rows.flat(), [2, T]))).values() as Float32Array;
      const V = full.length / (2 * T);
      const cache = new KvCache([new SequenceCache(), new SequenceCache()], { lastPositionOnly: true });
      const last = noGrad(() => model.forward(Tensor.from(rows.flat(), [2, T], 'int32'), cache));
      assert.deepEqual(last.shape, [2, 1, V]);
      const values = last.values() as Float32Array;
      for (let n = 0; n < 2; n++) {
        const d = maxDiff(values.subarray(n * V, (n + 1) * V), full.subarray(((n + 1) * T - 1) * V, (n + 1) * T * V));
        assert.ok(d <= 1e-5, `row ${n}: ${d}`);
      }
      assert.deepEqual(cache.offsets, [0, 0], 'the forward wrote every prompt position to the cache');
      cache.advance(T);
      assert.deepEqual(cache.offsets, [T, T]);
    });
  }

  for (const [name, spec] of [FAMILIES[0], FAMILIES[1]]) {
    it(`${name}: 3 rows of different lengths decoded together across a capacity doubling, logits within 1e-5`, () => {
      const model = randomModel(spec, 5);
      const rng = new Rng(8);
      // Row 0 fills its first 16 positions mid-way and its cache grows while the others' do not.
      const seqs = [13, 4, 9].map((n) => Array.from({ length: n }, () => rng.int(61)));
      const rows = seqs.map((ids) => {
        const row = new SequenceCache();
        const cache = new KvCache([row]);
        noGrad(() => model.forward(Tensor.from(ids, [1, ids.length], 'int32'), cache));
        cache.advance(ids.length);
        return row;
      });
      for (let step = 0; step < 6; step++) {
        const next = seqs.map(() => rng.int(61));
        seqs.forEach((ids, r) => ids.push(next[r]));
        const cache = new KvCache(rows, { lastPositionOnly: true });
        const logits = noGrad(() => model.forward(Tensor.from(next, [3, 1], 'int32'), cache)).values() as Float32Array;
        cache.advance(1);
        const V = logits.length / 3;
        seqs.forEach((ids, r) => {
          const full = noGrad(() => model.forward(Tensor.from(ids, [1, ids.length]))).values() as Float32Array;
          const d = maxDiff(logits.subarray(r * V, (r + 1) * V), full.subarray(full.length - V));
          assert.ok(d <= 1e-5, `step ${step} row ${r} (length ${ids.length}): ${d}`);
        });
      }
      assert.deepEqual(rows.map((r) => r.length), [19, 10, 15]);
    });
  }

  it('under bf16 the cached decode follows the bf16 full forward (and differs from fp32)', async () => {
    for (const [name, spec] of [FAMILIES[0], FAMILIES[4]]) {
      const model = randomModel(spec, 9);
      const ids = [5, 17, 2, 40, 33, 8, 1, 60];
      const full = withComputePrecision('bf16', () => noGrad(() => model.forward(Tensor.from(ids, [1, ids.length])))).values() as Float32Array;
      const V = full.length / ids.length;
      const cache = new KvCache();
      await cachedStep(model, ids.slice(0, 4), cache, 'bf16');
      const fp32 = new KvCache();
      await cachedStep(model, ids.slice(0, 4), fp32);
      for (let t = 4; t < ids.length; t++) {
        const bf16 = await cachedStep(model, [ids[t]], cache, 'bf16');
        const f32 = await cachedStep(model, [ids[t]], fp32);
        const row = full.subarray(t * V, (t + 1) * V);
        assert.ok(maxDiff(bf16, row) <= 2e-2, `${name} position ${t}: ${maxDiff(bf16, row)}`);
        assert.ok(maxDiff(bf16, f32) > 1e-5, `${name} position ${t}: bf16 ran`);
      }
    }
  });

  it('refuses several tokens after the prefill, and positions past the context, naming both', async () => {
    const [, spec] = FAMILIES[0];
    const model = randomModel(spec, 1);
    const cache = new KvCache();
    await cachedStep(model, [1, 2, 3], cache);
    assert.throws(() => model.forward(Tensor.from([4, 5], [1, 2], 'int32'), cache), /one token at a time, got 2 at position 3/);
    const full = new KvCache();
    await cachedStep(model, Array.from({ length: 32 }, (_, i) => i), full);
    await assert.rejects(cachedStep(model, [1], full), /sequence length 33 exceeds the model's context 32/);
  });

  it('advance() checks that every layer took the new positions', () => {
    const cache = new KvCache();
    const k = Tensor.zeros([1, 2, 3, 4]);
    cache.attend({}, k, k, k);
    assert.throws(() => cache.advance(2), /advance\(2\) from 0, but a layer holds 3 positions/);
    cache.advance(3);
    assert.equal(cache.offset, 3);
  });
});

const nativeLoaded = loadNativeBackend();
const skipNative = nativeLoaded.backend ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${nativeLoaded.reason}`;

test('under bf16 a decode step runs the backend\'s decode attention over a bf16 cache, one call per row and layer, as the per-head op does', { skip: skipNative }, async () => {
  const before = backendFor({ device: 'cpu', dtype: 'float32' }).name;
  setBackend('native');
  const entries = backendFor({ device: 'cpu', dtype: 'float32' }).bfloat16 as Bf16Entries<DeviceBuffer>;
  const kernel = entries.attentionDecode!;
  try {
    for (const [name, spec] of [FAMILIES[0], FAMILIES[2], FAMILIES[4]]) {
      const model = randomModel(spec, 11);
      const prompts = [[5, 17, 2, 40], [33, 8]];
      const decode = async (fused: boolean): Promise<{ logits: Float32Array[]; calls: number }> => {
        const cache = new KvCache(prompts.map(() => new SequenceCache()));
        const logits: Float32Array[] = [];
        let calls = 0;
        if (fused) {
          entries.attentionDecode = (...args) => {
            calls++;
            kernel(...args);
          };
        } else delete entries.attentionDecode;
        try {
          for (const [i, p] of prompts.entries()) await cachedStep(model, p, new KvCache([cache.rows[i]]), 'bf16');
          for (let t = 0; t < 3; t++) {
            const out = withComputePrecision('bf16', () => noGrad(() => model.forward(Tensor.from([t + 1, t + 7], [2, 1], 'int32'), cache)));
            cache.advance(1);
            logits.push(out.values() as Float32Array);
          }
        } finally {
          entries.attentionDecode = kernel;
        }
        return { logits, calls };
      };
      const fused = await decode(true);
      assert.equal(fused.calls, 3 * 2 * 2, `${name}: 3 steps x 2 rows x 2 layers`);
      const perHead = await decode(false);
      fused.logits.forEach((l, t) => assert.ok(maxDiff(l, perHead.logits[t]) <= 1e-4, `${name} step ${t}: ${maxDiff(l, perHead.logits[t])}`));
      // The bf16 cache is the sequence's: a float32 forward cannot continue it.
      const cache = new KvCache();
      await cachedStep(model, [5, 17], cache, 'bf16');
      await assert.rejects(cachedStep(model, [2], cache), /KvCache: a layer's keys are cached in bf16 and a forward now asks for float32 \(the compute precision changed within a sequence\)/);
    }
  } finally {
    setBackend(before);
  }
});

test('in float32 a decode step runs the backend\'s float32 decode attention, one call per row and layer', { skip: skipNative }, async () => {
  const before = backendFor({ device: 'cpu', dtype: 'float32' }).name;
  const registered = setBackend('native');
  const kernel = registered.attentionDecode!;
  let calls = 0;
  registered.attentionDecode = (...args) => {
    calls++;
    kernel(...args);
  };
  try {
    const [, spec] = FAMILIES[1];
    const model = randomModel(spec, 4);
    const cache = new KvCache([new SequenceCache(), new SequenceCache()]);
    noGrad(() => model.forward(Tensor.from([5, 17, 2, 40, 33, 8], [2, 3], 'int32'), cache));
    cache.advance(3);
    assert.equal(calls, 0, 'a prefill runs the causal attention');
    noGrad(() => model.forward(Tensor.from([1, 2], [2, 1], 'int32'), cache));
    cache.advance(1);
    assert.equal(calls, 2 * 2, '2 rows x 2 layers');
  } finally {
    registered.attentionDecode = kernel;
    setBackend(before);
  }
});

test('a sequence cache made for its length is not grown; past it, it doubles', () => {
  const kv = (T: number): Tensor => Tensor.from(new Float32Array(2 * T * 4).fill(1), [1, 2, T, 4]);
  const layer = {};
  const capacities = (reserved: number | undefined): number[] => {
    const cache = new SequenceCache(reserved);
    const first = cache.store(layer, kv(5), kv(5), 0).capacity;
    cache.advance(5);
    const second = cache.store(layer, kv(7), kv(7), 0).capacity;
    return [first, second];
  };
  assert.deepEqual(capacities(12), [12, 12]);
  assert.deepEqual(capacities(6), [6, 12], 'past its 6 reserved positions, doubled');
  assert.deepEqual(capacities(3), [16, 16], 'a reservation too small for the prompt is no reservation');
  assert.deepEqual(capacities(undefined), [16, 16]);
});

test('a generation\'s cache is reserved where its whole length is at most twice its prompt or 256 positions, and ends at that capacity', () => {
  assert.equal(reservedPositions(64, 16), 80);
  assert.equal(reservedPositions(200, 200), 400);
  assert.equal(reservedPositions(200, 201), undefined, 'more than doubling could leave unused');
  assert.equal(reservedPositions(14, 16), 30, 'a short reply is made whole at once');
  assert.equal(reservedPositions(32, 224), 256);
  assert.equal(reservedPositions(32, 225), undefined);
  assert.equal(finalCapacity(64, 16), 80);
  assert.equal(finalCapacity(200, 201), 512, 'doubled from 16');
  assert.equal(finalCapacity(3, 200), 203);
});
