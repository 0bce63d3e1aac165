/**
 * ZeRO (--zero 1|2|3) with ranks on the GPU (webgpu on SwiftShader here): a GPU rank beside a cpu
 * rank, and two GPU ranks, over in-process transports, equal one cpu process at the same global
 * batch (the MLP, GPT-2 and llama-tiny). Skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { CPU } from '../../../src/tensor/storage.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainData, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import { maxRelDiff } from '../../helpers/cluster.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const all = syntheticClassification({ seed: 2, samples: 128 + 32, inputShape: [20], numClasses: 4, noise: 2 });
const MLP_DATA: TrainData = {
  train: { ...all, size: 128, inputs: all.inputs.subarray(0, 128 * 20), labels: all.labels.subarray(0, 128) },
  test: { ...all, size: 32, inputs: all.inputs.subarray(128 * 20), labels: all.labels.subarray(128) },
};
const TEXT_DATA: TrainData = {
  train: syntheticText({ seed: 3, samples: 16, split: 'train', task: 'language-model', contextLength: 8, vocab: 32 }),
  test: syntheticText({ seed: 3, samples: 4, split: 'test', task: 'language-model', contextLength: 8, vocab: 32 }),
};

const mlpConfig = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...defaultConfig('mlp'), hidden: [16, 12], optimizer: 'adam', lr: 0.01, clipGradNorm: 0.5, maxSteps: 3, evalBatchSize: 32, evalEvery: 0, ...over,
});
const gptConfig = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...defaultConfig('gpt2-tiny'), layers: 2, width: 16, heads: 2, context: 8, optimizer: 'adamw', lr: 0.003, clipGradNorm: 1, maxSteps: 2, evalBatchSize: 4, evalEvery: 0, ...over,
});
const llamaConfig = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...defaultConfig('llama-tiny'), context: 8, optimizer: 'adamw', lr: 0.003, clipGradNorm: 1, maxSteps: 2, evalBatchSize: 4, evalEvery: 0, ...over,
});

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

interface Ranked {
  outcome: TrainOutcome;
  strategy: ZeroStrategy;
  losses: number[];
}

/** Two ranks over in-process transports, rank r on devices[r], each running the loop under ZeRO at `stage`. */
async function zeroPair(stage: 1 | 2 | 3, devices: string[], config: TrainConfig, data: TrainData, overlap = false): Promise<Ranked[]> {
  const groups = createInProcessTransports(2, { timeoutMs: 60_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 60_000 }));
  return Promise.all(groups.map(async (g) => {
    const strategy = new ZeroStrategy(g, { stage, overlap, bucketFloats: 100, checksumEvery: 1 });
    const losses: number[] = [];
    const outcome = await train({ ...config, device: devices[g.rank] }, data, strategy, { onStep: (r) => losses.push(r.loss) });
    return { outcome, strategy, losses };
  }));
}

/** The model arena's parameters on the host, from any device. */
async function hostParams(o: TrainOutcome): Promise<Float32Array> {
  const params = o.model.arena().params;
  return params.device === CPU ? params.readSync() : params.read();
}

/**
 * How far each rank is from one process: rank 0's whole model (gathered there at the end), rank 1's
 * shard (its arena) against the same range of the single process's parameters.
 */
async function paramDiffs(ranks: Ranked[], single: Float32Array): Promise<number[]> {
  const whole = await hostParams(ranks[0].outcome);
  const [a, b] = ranks[1].strategy.shardRange();
  return [maxRelDiff(whole, single), maxRelDiff(await hostParams(ranks[1].outcome), single.subarray(a, b))];
}

describe('ZeRO with GPU ranks (webgpu)', () => {
  it('a GPU rank beside a cpu rank at stages 1, 2 (with and without --overlap) and 3 equals one cpu process (MLP, Adam, clipping)', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const losses: number[] = [];
    const single = await train(mlpConfig({ batchSize: 32 }), MLP_DATA, new LocalStrategy(), { onStep: (r) => losses.push(r.loss) });
    const ref = single.model.arena().params.readSync();
    for (const [stage, overlap] of [[1, false], [1, true], [2, false], [2, true], [3, false]] as const) {
      const ranks = await zeroPair(stage, ['webgpu', CPU], mlpConfig({ batchSize: 16 }), MLP_DATA, overlap);
      const what = `stage ${stage}${overlap ? ' --overlap' : ''}`;
      assert.equal(ranks[0].outcome.model.arena().device, 'webgpu', `${what}: rank 0 trained on the GPU`);
      assert.equal(ranks[1].outcome.model.arena().device, CPU);
      for (const r of ranks) assert.ok(maxRelDiff(r.losses, losses) < 1e-5, `${what}: losses ${r.losses} vs ${losses}`);
      const diffs = await paramDiffs(ranks, ref);
      for (const [r, d] of diffs.entries()) assert.ok(d < 1e-5, `${what} rank ${r}: parameters differ by ${d}`);
      const e = ranks[0].outcome.finalEval!;
      assert.ok(Math.abs(e.loss - single.finalEval!.loss) < 1e-5 * single.finalEval!.loss, `${what}: test loss ${e.loss} vs ${single.finalEval!.loss}`);
    }
  });

  it('with --grad-accum 2 (a GPU and a cpu rank × 2 micro-batches of 8 = one process at 32): stages 1, 2, 3', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const single = await train(mlpConfig({ batchSize: 32 }), MLP_DATA, new LocalStrategy());
    const ref = single.model.arena().params.readSync();
    for (const stage of [1, 2, 3] as const) {
      const ranks = await zeroPair(stage, ['webgpu', CPU], mlpConfig({ batchSize: 8, gradAccum: 2 }), MLP_DATA);
      for (const [r, d] of (await paramDiffs(ranks, ref)).entries()) assert.ok(d < 1e-5, `stage ${stage} rank ${r}: parameters differ by ${d}`);
    }
  });

  it('two GPU ranks at stage 3 (GPT-2: tied embedding, per-block layer groups) and stage 1 equal one cpu process', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const losses: number[] = [];
    const single = await train(gptConfig({ batchSize: 4 }), TEXT_DATA, new LocalStrategy(), { onStep: (r) => losses.push(r.loss) });
    const ref = single.model.arena().params.readSync();
    for (const stage of [3, 1] as const) {
      const ranks = await zeroPair(stage, ['webgpu', 'webgpu'], gptConfig({ batchSize: 2 }), TEXT_DATA);
      for (const r of ranks) assert.ok(maxRelDiff(r.losses, losses) < 1e-5, `stage ${stage}: losses ${r.losses} vs ${losses}`);
      const diffs = await paramDiffs(ranks, ref);
      for (const [r, d] of diffs.entries()) assert.ok(d < 1e-4, `stage ${stage} rank ${r}: parameters differ by ${d}`);
    }
  });

  it('llama-tiny (rotary, grouped-query attention, untied head): a GPU rank beside a cpu rank at stages 1 and 3 equals one cpu process', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const losses: number[] = [];
    const single = await train(llamaConfig({ batchSize: 4 }), TEXT_DATA, new LocalStrategy(), { onStep: (r) => losses.push(r.loss) });
    const ref = single.model.arena().params.readSync();
    for (const stage of [1, 3] as const) {
      const ranks = await zeroPair(stage, ['webgpu', CPU], llamaConfig({ batchSize: 2 }), TEXT_DATA);
      assert.equal(ranks[0].outcome.model.arena().device, 'webgpu', `stage ${stage}: rank 0 trained on the GPU`);
      for (const r of ranks) assert.ok(maxRelDiff(r.losses, losses) < 1e-5, `stage ${stage}: losses ${r.losses} vs ${losses}`);
      const diffs = await paramDiffs(ranks, ref);
      for (const [r, d] of diffs.entries()) assert.ok(d < 1e-4, `stage ${stage} rank ${r}: parameters differ by ${d}`);
    }
  });
});
