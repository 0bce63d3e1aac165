/**
 * The run's compute precision (src/train/engine/precision.ts): the loop sets it once per run, before the
 * first step, from the config; auto is resolved into the config with why, and the result records it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { computePrecision, setComputePrecision } from '../../../src/tensor/precision.js';
import type { AutoPrecision } from '../../../src/train/engine/precision_auto.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { train } from '../../../src/train/loop/loop.js';
import { checkPrecisionRuns, settlePrecision } from '../../../src/train/engine/precision.js';
import { buildResult } from '../../../src/train/run/result.js';
import { runSignature } from '../../../src/train/run/signature.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { splitTrainTest } from '../../helpers/split.js';

const DATA = splitTrainTest(syntheticClassification({ seed: 1, samples: 160, inputShape: [6], numClasses: 3 }), 128);
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...defaultConfig('mlp'), hidden: [8], batchSize: 16, maxSteps: 3, evalBatchSize: 32, ...over,
});

const CHOSE_BF16: AutoPrecision = { precision: 'bf16', instructions: ['amx_bf16'], fp32Ms: 4, bf16Ms: 1, reason: 'amx_bf16 (/proc/cpuinfo); faster' };

describe('compute precision of a run', () => {
  it('the loop sets the config\'s precision before the first step, every run (a bf16 run does not leak into the next)', async () => {
    const seen: string[] = [];
    const watch = { onStart: () => seen.push(`start ${computePrecision()}`), onStep: () => seen.push(computePrecision()) };
    setComputePrecision('fp32');
    await train(config({ precision: 'bf16' }), DATA, new LocalStrategy(), watch);
    assert.deepEqual(seen, ['start bf16', 'bf16', 'bf16', 'bf16']);
    seen.length = 0;
    await train(config(), DATA, new LocalStrategy(), watch);
    assert.deepEqual(seen, ['start fp32', 'fp32', 'fp32', 'fp32']);
  });

  it('auto is resolved into the config with why, said once; fp32 and bf16 are left as they are', () => {
    const said: string[] = [];
    const c = config({ precision: 'auto' });
    assert.equal(settlePrecision(c, CHOSE_BF16, (l) => said.push(l)), 'bf16');
    assert.equal(c.precision, 'bf16');
    assert.deepEqual(c.precisionAuto, CHOSE_BF16);
    assert.deepEqual(said, ['precision auto: bf16 (amx_bf16 (/proc/cpuinfo); faster)']);
    assert.equal(settlePrecision(c, undefined, (l) => said.push(l)), 'bf16');
    assert.equal(said.length, 1);
    const fixed = config({ precision: 'fp32' });
    assert.equal(settlePrecision(fixed, CHOSE_BF16, (l) => said.push(l)), 'fp32');
    assert.equal(fixed.precisionAuto, undefined);
  });

  it('a rank whose device cannot compute in the run\'s precision is refused before the first step, named; auto resolves for the rank\'s device', () => {
    checkPrecisionRuns('bf16', 'cpu', 0);
    checkPrecisionRuns('fp32', 'cpu', 0);
    assert.throws(() => checkPrecisionRuns('bf16', 'webgpu', 1), /--precision bf16: rank 1 trains on webgpu, which cannot compute in bf16; use --precision fp32, or auto/);
    // auto on a device without bf16: fp32, said with why, nothing measured.
    const said: string[] = [];
    const gpu = config({ precision: 'auto', device: 'webgpu' });
    assert.equal(settlePrecision(gpu, undefined, (l) => said.push(l)), 'fp32');
    assert.equal(gpu.precisionAuto?.fp32Ms, null);
    assert.deepEqual(said, ['precision auto: fp32 (the webgpu device computes in fp32 only)']);
  });

  it('result.json records the precision, and auto\'s choice and timings', async () => {
    const c = config({ precision: 'auto' });
    settlePrecision(c, CHOSE_BF16, () => {});
    const outcome = await train(c, DATA, new LocalStrategy());
    const info = { backend: 'x', threads: 1, startedAt: new Date(), endedAt: new Date(), strategy: 'local', perRank: [{ rank: 0, samples: 48, train_seconds: 1, compute_ms: 1, comm_ms: 0, wait_ms: 0 }] };
    const r = buildResult(c, outcome, info);
    assert.equal(r.precision, 'bf16');
    assert.deepEqual(r.precision_auto, { chose: 'bf16', instructions: ['amx_bf16'], fp32_ms: 4, bf16_ms: 1, reason: CHOSE_BF16.reason });
    const plain = buildResult(config(), outcome, info);
    assert.equal(plain.precision, 'fp32');
    assert.equal('precision_auto' in plain, false);
  });

  it('a checkpoint\'s run signature leaves the precision out (fp32 master weights resume under either)', () => {
    const fp32 = runSignature(config());
    assert.equal(runSignature(config({ precision: 'bf16' })), fp32);
    assert.equal(runSignature({ ...config({ precision: 'bf16' }), precisionAuto: CHOSE_BF16 }), fp32);
    assert.notEqual(runSignature(config({ lr: 0.5 })), fp32);
  });
});
