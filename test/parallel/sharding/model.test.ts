/**
 * Tensor parallelism is the same math as one process: GPT-2-tiny (T = 2, 4), BERT-tiny (T = 2) and
 * llama-tiny with its Qwen2 (q/k/v biases) and Qwen3 (q/k norms, tied head) variants (T = 2: the
 * heads and the kv heads split) split over the in-process transport give the same loss and, assembled from the shards, the same
 * gradients as the whole model; replicated parameters get bit-equal gradients on every rank; and a
 * block costs two all-reduces forward and two backward.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bertSpec, gpt2Spec, llamaSpec } from '../../../src/nn/models/presets.js';
import { type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import { PendingGroup, type TensorParallelComm, type TensorParallelModel, assembleFull, buildTensorParallelModel, groupReducer, shardLayout } from '../../../src/parallel/sharding/index.js';
import { backward, backwardAsync } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { makeWorld, onAll } from '../../comm/fixture.js';
import { GRADIENT_NOISE_FLOOR, maxRelDiff } from '../../helpers/cluster.js';

const VOCAB = 50;
const N = 2;
const T = 12;
const SEED = 7;

function batch(seed: number): { ids: Tensor; labels: Int32Array } {
  let x = seed * 2654435761;
  const next = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % VOCAB;
  const ids = Float32Array.from({ length: N * T }, next);
  const labels = Int32Array.from({ length: N * T }, next);
  return { ids: Tensor.fromHost(ids, [N, T]), labels };
}

/** The whole model's loss and gradients, by parameter name. */
function reference(spec: ModelSpec): { loss: number; grads: Map<string, Float32Array> } {
  const model = createModel(spec, SEED);
  model.arena();
  const { ids, labels } = batch(1);
  const loss = crossEntropy(model.forward(ids), labels);
  backward(loss);
  return { loss: loss.item(), grads: new Map(model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.gradValues()!)])) };
}

/** A comm that counts its all-reduces. */
function counting(inner: TensorParallelComm): TensorParallelComm & { calls: number } {
  const c = { rank: inner.rank, size: inner.size, calls: 0, allReduce: (d: Float32Array) => (c.calls++, inner.allReduce(d)) };
  return c;
}

interface RankRun {
  model: TensorParallelModel;
  loss: number;
  forwardSums: number;
  backwardSums: number;
}

async function parallel(spec: ModelSpec, size: number): Promise<RankRun[]> {
  const world = await makeWorld('inproc', size, { timeoutMs: 10_000 });
  try {
    return await onAll(world, async (pg) => {
      const comm = counting(pg);
      const model = buildTensorParallelModel(spec, SEED, groupReducer(comm));
      model.arena();
      const { ids, labels } = batch(1);
      const loss = crossEntropy(await model.forwardAsync(ids), labels);
      const forwardSums = comm.calls;
      await backwardAsync(loss);
      return { model, loss: loss.item(), forwardSums, backwardSums: comm.calls - forwardSums };
    });
  } finally {
    await world.close();
  }
}


const llamaTiny = llamaSpec('llama-tiny', VOCAB, T);
/** Name, spec, group sizes, and all-reduces per block in the backward beyond the two of every block. */
const cases: [string, ModelSpec & { layers: number }, number[], number][] = [
  ['gpt2-tiny', gpt2Spec('gpt2-tiny', VOCAB, T), [2, 4], 0],
  ['bert-tiny', bertSpec('bert-tiny', VOCAB, T), [2], 0],
  ['llama-tiny', llamaTiny, [2], 0],
  ['llama-tiny as qwen2 (q/k/v biases)', { ...llamaTiny, modelType: 'qwen2', qkvBias: true }, [2], 0],
  // Qwen3's q/k norm weights are whole on every rank but each rank's gradient is its heads' part: two sums more.
  ['llama-tiny as qwen3 (q/k norms, tied head)', { ...llamaTiny, modelType: 'qwen3', qkNorm: true, tieEmbeddings: true }, [2], 2],
];

for (const [name, spec, sizes, extraBackwardSums] of cases) {
  describe(`tensor-parallel ${name}`, () => {
    const ref = reference(spec);
    for (const size of sizes) {
      test(`T=${size}: the same loss and assembled gradients as one process (1e-5 relative)`, async () => {
        const runs = await parallel(spec, size);
        for (const r of runs) assert.ok(Math.abs(r.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${r.loss} vs ${ref.loss}`);
        const grads = assembleFull(runs.map((r) => r.model), true);
        assert.equal(grads.size, ref.grads.size);
        let worst = 0;
        for (const [param, want] of ref.grads) {
          const got = grads.get(param);
          assert.ok(got, `no assembled gradient for ${param}`);
          const err = maxRelDiff(got.values, want, GRADIENT_NOISE_FLOOR);
          assert.ok(err <= 1e-5, `${param}: gradient differs by ${err.toExponential(2)} relative`);
          worst = Math.max(worst, err);
        }
        if (process.env.TP_REPORT) console.log(`${name} T=${size}: loss ${runs[0].loss} vs ${ref.loss}, worst gradient error ${worst.toExponential(2)}`);
      });

      test(`T=${size}: each rank holds 1/T of every split weight, replicated gradients are bit-equal on every rank`, async () => {
        const runs = await parallel(spec, size);
        const layout = shardLayout(runs[0].model);
        assert.ok(layout.size > 0);
        const full = createModel(spec, SEED).numParameters();
        const replicated = runs[0].model.namedParameters().filter(([n]) => !layout.has(n)).reduce((s, [, p]) => s + p.size, 0);
        for (const r of runs) assert.equal(r.model.numParameters(), replicated + (full - replicated) / size);
        for (const [i, [param, p]] of runs[0].model.namedParameters().entries()) {
          if (layout.has(param)) continue;
          for (const r of runs.slice(1)) assert.deepEqual(r.model.namedParameters()[i][1].gradValues(), p.gradValues(), `${param} differs between ranks`);
        }
      });

      test(`T=${size}: two all-reduces forward and ${2 + extraBackwardSums} backward per block`, async () => {
        const runs = await parallel(spec, size);
        for (const r of runs) {
          assert.equal(r.forwardSums, 2 * spec.layers, 'forward');
          assert.equal(r.backwardSums, (2 + extraBackwardSums) * spec.layers, 'backward');
        }
      });
    }
  });
}

test('qwen3 at T=2: a second step (the q/k norm weights read through f again) gives one process\'s gradients again', async () => {
  const spec: ModelSpec = { ...llamaTiny, modelType: 'qwen3', qkNorm: true };
  const ref = reference(spec);
  const world = await makeWorld('inproc', 2, { timeoutMs: 10_000 });
  try {
    const models = await onAll(world, async (pg) => {
      const model = buildTensorParallelModel(spec, SEED, groupReducer(pg));
      model.arena();
      for (const seed of [2, 1]) {
        model.zeroGrad();
        const { ids, labels } = batch(seed);
        await backwardAsync(crossEntropy(await model.forwardAsync(ids), labels));
      }
      return model;
    });
    for (const [param, got] of assembleFull(models, true)) {
      const err = maxRelDiff(got.values, ref.grads.get(param)!, GRADIENT_NOISE_FLOOR);
      assert.ok(err <= 1e-5, `${param}: second step's gradient differs by ${err.toExponential(2)} relative`);
    }
  } finally {
    await world.close();
  }
});

test('a model that does not split T ways is refused, naming the flag and the model', () => {
  assert.throws(() => buildTensorParallelModel(bertSpec('bert-tiny', VOCAB, T), SEED, new PendingGroup(0, 4), 'bert-tiny'), /--tensor-parallel 4: bert-tiny has 2 attention heads, which do not divide by 4/);
  assert.throws(() => buildTensorParallelModel(gpt2Spec('gpt2', VOCAB, T), SEED, new PendingGroup(0, 2), 'gpt2'), /--tensor-parallel 2: gpt2 has dropout 0.1/);
  assert.throws(
    () => buildTensorParallelModel(llamaTiny, SEED, new PendingGroup(0, 4), 'llama-tiny'),
    /--tensor-parallel 4: llama-tiny has 2 key\/value heads \(num_key_value_heads\), which do not divide by 4/,
  );
});
