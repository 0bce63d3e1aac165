import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { loadDataset } from '../../../src/data/load.js';
import { BatchLoader } from '../../../src/data/loader.js';
import type { Dataset } from '../../../src/data/dataset.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import type { PipelineStageModule } from '../../../src/parallel/pipeline/stage_model.js';
import { assembleFull } from '../../../src/parallel/sharding/index.js';
import { forwardBackward } from '../../../src/train/loop/micro_batches.js';
import { type AnyBatch, outputWidth } from '../../../src/train/loop/objective.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { PipelineStrategy } from '../../../src/train/strategies/pipeline.js';
import { GRADIENT_NOISE_FLOOR, maxRelDiff } from '../../helpers/cluster.js';

/**
 * Pipeline × tensor parallel composed, for BERT (GPT-2's runs in pipeline.test.ts): each stage runs
 * the model's own layers with the split projections swapped in. 2 stages × 2 tensor-parallel ranks
 * over in-process groups; each stage's shards, assembled, have one process's gradients.
 */
const SEED = 3;
const BATCH = 4;

function batchOf(data: Dataset, size: number): AnyBatch {
  const [b] = new BatchLoader<Dataset>(data, Int32Array.from({ length: size }, (_, i) => i), size).batches() as Iterable<AnyBatch>;
  return b;
}

describe('pipeline × tensor parallel composes for BERT', { timeout: 120_000 }, () => {
  it('bert-tiny, 2 stages × --tensor-parallel 2, 2 micro-batches 1f1b: every stage\'s assembled gradients and the loss are one process\'s (1e-5)', async () => {
    const data = loadDataset({ name: 'synthetic_text', seed: SEED, tokenTask: 'masked-lm', contextLength: 16 }).train;
    const spec = defaultSpec('bert-tiny', data.inputShape, outputWidth(data), { layers: 2, context: 16 });
    const groups = createInProcessTransports(4, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t));
    const strategies = groups.map((g) => new PipelineStrategy(g, { stages: 2, microBatches: 2, schedule: '1f1b', tensorParallel: 2 }, (dp) => new AllReduceStrategy(dp, { checksumEvery: 0 })));
    const run = { train: data, batchSize: BATCH, optimizer: 'adamw', resumedState: () => null };
    const models = await Promise.all(strategies.map((s) => s.buildModel(spec, SEED, 'bert', run) as Promise<PipelineStageModule>));
    const ctxs = models.map((m) => ({ model: m, optimizer: makeOptimizer(m.arena(), { name: 'adamw', lr: 1e-3 }) }));
    await Promise.all(strategies.map((s, r) => s.setup(ctxs[r])));
    const outcomes = await Promise.all(strategies.map((s, r) => {
      models[r].zeroGrad();
      return s.runStep(ctxs[r], { data, batch: batchOf(data, BATCH), microSize: BATCH, step: 0, lrStep: 0, faultsInjected: false, beforeExchange: async () => performance.now() });
    }));
    await Promise.all(strategies.map((s) => s.close()));

    const whole = createModel(spec, SEED);
    whole.zeroGrad();
    const want = await forwardBackward(whole, data, batchOf(data, BATCH), BATCH);
    const wantGrads = new Map(whole.namedParameters().map(([n, p]) => [n, Float32Array.from(p.gradValues()!)]));
    let checked = 0;
    for (const stage of [0, 1]) {
      const shards = strategies.map((s, r) => [s, models[r]] as const).filter(([s]) => s.stage === stage).sort(([a], [b]) => a.tpRank - b.tpRank).map(([, m]) => m);
      for (const [name, { values }] of assembleFull(shards, true)) {
        const ref = wantGrads.get(name);
        assert.ok(ref, `${name}: not a parameter of the whole model`);
        const rel = maxRelDiff(values, ref, GRADIENT_NOISE_FLOOR);
        assert.ok(rel <= 1e-5, `stage ${stage}: ${name} off by ${rel} relative`);
        checked++;
      }
    }
    assert.ok(checked >= wantGrads.size, `every parameter checked (${checked} of ${wantGrads.size})`);
    for (const o of outcomes) assert.ok(Math.abs(o.loss - want.loss) <= 1e-5 * Math.abs(want.loss), `loss ${o.loss} vs ${want.loss}`);
  });
});
