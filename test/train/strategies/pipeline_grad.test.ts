import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import type { Dataset } from '../../../src/data/dataset.js';
import { loadDataset } from '../../../src/data/load.js';
import { BatchLoader } from '../../../src/data/loader.js';
import { type ModelSpec, createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { PipelineStageModule } from '../../../src/parallel/pipeline/stage_model.js';
import { forwardBackward } from '../../../src/train/loop/micro_batches.js';
import { type AnyBatch, outputWidth } from '../../../src/train/loop/objective.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { PipelineStrategy } from '../../../src/train/strategies/pipeline.js';
import { GRADIENT_NOISE_FLOOR, maxRelDiff } from '../../helpers/cluster.js';

/**
 * The pipeline strategy's step over in-process groups against one process: the whole model's
 * gradient of the global batch's mean loss, parameter by parameter, including the tied embedding
 * (summed between its owner on stage 0 and its copy on the last stage) and the data-parallel
 * average over the replicas. llama-tiny runs untied (its lm_head on the last stage alone) and as
 * Qwen3 (q/k norms, tied head).
 */
const SEED = 3;

type Family = 'gpt2' | 'bert' | 'llama' | 'qwen3';

function tokens(model: Family): Dataset {
  return loadDataset({ name: 'synthetic_text', seed: SEED, tokenTask: model === 'bert' ? 'masked-lm' : 'language-model', contextLength: 16 }).train;
}

function batchOf(data: Dataset, from: number, size: number): AnyBatch {
  const [b] = new BatchLoader<Dataset>(data, Int32Array.from({ length: size }, (_, i) => from + i), size).batches() as Iterable<AnyBatch>;
  return b;
}

function specOf(model: Family, data: Dataset, layers: number): ModelSpec {
  const preset = ({ gpt2: 'gpt2-tiny', bert: 'bert-tiny', llama: 'llama-tiny', qwen3: 'llama-tiny' } as const)[model];
  const spec = defaultSpec(preset, data.inputShape, outputWidth(data), { layers, context: 16 });
  return model === 'qwen3' ? { ...spec, modelType: 'qwen3', qkNorm: true, tieEmbeddings: true } as ModelSpec : spec;
}

/** The parameter the last stage reads but stage 0 owns (a tied head), if any. */
function tiedOf(model: Family): string | null {
  return ({ gpt2: 'transformer.wte.weight', bert: 'bert.embeddings.word_embeddings.weight', llama: null, qwen3: 'model.embed_tokens.weight' })[model];
}

async function pipelineGrads(model: Family, stages: number, replicas: number, micro: number, schedule: 'gpipe' | '1f1b', batchSize: number, layers: number) {
  const world = stages * replicas;
  const data = tokens(model);
  const spec = specOf(model, data, layers);
  const groups = createInProcessTransports(world, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t));
  const strategies = groups.map((g) => new PipelineStrategy(g, { stages, microBatches: micro, schedule }, (dp) => new AllReduceStrategy(dp, { checksumEvery: 0 })));
  const run = { train: data, batchSize, optimizer: 'adamw', resumedState: () => null };
  const models = await Promise.all(strategies.map((s) => s.buildModel(spec, SEED, spec.type, run) as Promise<PipelineStageModule>));
  const ctxs = models.map((m) => ({ model: m, optimizer: makeOptimizer(m.arena(), { name: 'adamw', lr: 1e-3 }) }));
  await Promise.all(strategies.map((s, r) => s.setup(ctxs[r])));
  const outcomes = await Promise.all(strategies.map((s, r) => {
    models[r].zeroGrad();
    return s.runStep(ctxs[r], {
      data, batch: batchOf(data, s.replica * batchSize, batchSize), microSize: batchSize, step: 0, lrStep: 0, faultsInjected: false,
      beforeExchange: async () => performance.now(),
    });
  }));
  const grads = new Map<string, Float32Array[]>();
  models.forEach((m) => {
    const arena = m.arena();
    for (const e of arena.entries) grads.set(e.name, [...(grads.get(e.name) ?? []), arena.grads.view(e.offset, e.size).readSync().slice()]);
  });
  await Promise.all(strategies.map((s) => s.close()));
  return { grads, outcomes, models, data, spec };
}

async function reference(data: Dataset, spec: ModelSpec, batch: AnyBatch): Promise<{ grads: Map<string, Float32Array>; loss: number }> {
  const model = createModel(spec, SEED);
  model.zeroGrad();
  const { loss } = await forwardBackward(model, data, batch, batch.size);
  const arena = model.arena();
  return { grads: new Map(arena.entries.map((e) => [e.name, arena.grads.view(e.offset, e.size).readSync().slice()])), loss };
}


async function check(model: Family, stages: number, replicas: number, micro: number, schedule: 'gpipe' | '1f1b', layers: number): Promise<void> {
  const batchSize = 8;
  const got = await pipelineGrads(model, stages, replicas, micro, schedule, batchSize, layers);
  const want = await reference(got.data, got.spec, batchOf(got.data, 0, batchSize * replicas));
  let worst = 0;
  for (const [name, ref] of want.grads) {
    const copies = got.grads.get(name);
    assert.ok(copies, `${name}: no stage holds it`);
    for (const g of copies) {
      const rel = maxRelDiff(g, ref, GRADIENT_NOISE_FLOOR);
      worst = Math.max(worst, rel);
      assert.ok(rel <= 1e-5, `${model} P=${stages} dp=${replicas} M=${micro} ${schedule}: ${name} off by ${rel} relative`);
    }
  }
  for (const o of got.outcomes) assert.ok(Math.abs(o.loss - want.loss) <= 1e-5 * Math.abs(want.loss), `loss ${o.loss} vs ${want.loss}`);
  // The tied embedding: its owner (stage 0) and the copy on the last stage hold the same summed gradient.
  const tied = tiedOf(model);
  if (tied) assert.equal(got.grads.get(tied)!.length, 2 * replicas, `${tied} lives on stage 0 and on the last stage of each replica`);
  else assert.ok([...got.grads.values()].every((copies) => copies.length === replicas), 'untied: every parameter on one stage of each replica');
  process.stdout.write(`# ${model} P=${stages} dp=${replicas} M=${micro} ${schedule}: worst parameter ${worst.toExponential(2)} relative\n`);
}

describe('pipeline strategy: the step\'s gradients equal one process\'s (in-process groups)', { timeout: 120_000 }, () => {
  it('gpt2-tiny, 2 stages, 4 micro-batches, gpipe and 1f1b', async () => {
    await check('gpt2', 2, 1, 4, 'gpipe', 2);
    await check('gpt2', 2, 1, 4, '1f1b', 2);
  });

  it('gpt2 with 4 layers on 3 stages (a middle stage), 1f1b', async () => {
    await check('gpt2', 3, 1, 4, '1f1b', 4);
  });

  it('bert-tiny, 2 stages × 2 data-parallel replicas (the dp groups average each stage)', async () => {
    await check('bert', 2, 2, 2, '1f1b', 2);
  });

  it('llama-tiny (untied head) on 2 stages, 1f1b; as Qwen3 (q/k norms, tied head) on 3 stages × 2 replicas, gpipe', async () => {
    await check('llama', 2, 1, 4, '1f1b', 2);
    await check('qwen3', 3, 2, 2, 'gpipe', 3);
  });
});
