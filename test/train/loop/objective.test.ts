import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { IGNORE_INDEX, type TokenDataset } from '../../../src/data/dataset.js';
import { BatchLoader, type TokenBatch } from '../../../src/data/loader.js';
import { Embedding } from '../../../src/nn/layers/embedding.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { backward } from '../../../src/tensor/autograd.js';
import { evalBatchSize, evaluate } from '../../../src/train/loop/evaluate.js';
import { batchInput, batchLoss, lossWeight, outputWidth } from '../../../src/train/loop/objective.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { Rng } from '../../../src/util/rng.js';

const VOCAB = 7;
const T = 5;

/** A masked-LM style set: random ids, a varying number of scored positions per sequence (some none). */
function maskedSet(size: number, seed = 3): TokenDataset {
  const rng = new Rng(seed);
  const inputs = new Int32Array(size * T);
  const labels = new Int32Array(size * T).fill(IGNORE_INDEX);
  for (let i = 0; i < size; i++) {
    const scored = i % 4 === 3 ? 0 : 1 + rng.int(T);
    for (let t = 0; t < T; t++) {
      inputs[i * T + t] = rng.int(VOCAB);
      if (t < scored) labels[i * T + t] = rng.int(VOCAB);
    }
  }
  return { task: 'masked-lm', name: 'masked', size, inputShape: [T], inputs, labels, vocabSize: VOCAB, maskToken: VOCAB - 1 };
}

/** logits [N, T, V] = a learned table row per input token: the smallest model of a token task. */
function bigram(seed: number): Embedding {
  return new Embedding(VOCAB, VOCAB, new Rng(seed));
}

function batchOf(data: TokenDataset, from: number, to: number): TokenBatch {
  const loader = new BatchLoader(data, Int32Array.from({ length: to - from }, (_, i) => from + i), to - from);
  const b = loader.batches().next().value as TokenBatch;
  return { size: b.size, indices: b.indices.slice(), inputs: b.inputs.slice(), labels: b.labels.slice() };
}

/** Reference: −log softmax(logits)[label] averaged over scored positions, in float64. */
function referenceLoss(logits: Float32Array, labels: Int32Array): number {
  let sum = 0;
  let n = 0;
  for (let r = 0; r < labels.length; r++) {
    if (labels[r] === IGNORE_INDEX) continue;
    const row = logits.subarray(r * VOCAB, (r + 1) * VOCAB);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    sum += lse - row[labels[r]];
    n++;
  }
  return sum / n;
}

describe('token-task objective', () => {
  it('the loader gathers contextLength labels per sample; the loss is the mean cross-entropy over scored positions', () => {
    const data = maskedSet(8);
    const batch = batchOf(data, 0, 8);
    assert.equal(batch.labels.length, 8 * T);
    assert.deepEqual([...batch.labels], [...data.labels]);
    const model = bigram(1);
    const logits = model.forward(batchInput(data, batch));
    assert.deepEqual(logits.shape, [8, T, VOCAB]);
    const loss = batchLoss(data, logits, batch).item();
    assert.ok(Math.abs(loss - referenceLoss(logits.values() as Float32Array, batch.labels)) < 1e-5);
    assert.equal(lossWeight(data, batch), [...data.labels].filter((l) => l !== IGNORE_INDEX).length);
    assert.equal(outputWidth(data), VOCAB);
  });

  it('two ranks all-reducing gradients weighted by scored tokens give the full batch\'s gradient and loss', async () => {
    const data = maskedSet(12);
    // Split so the ranks score very different numbers of tokens (one holds the empty sequences).
    const parts = [batchOf(data, 0, 3), batchOf(data, 3, 12)];
    assert.notEqual(lossWeight(data, parts[0]) / 3, lossWeight(data, parts[1]) / 9, 'the fixture must weigh the ranks unequally');

    const full = bigram(5);
    const fullLoss = batchLoss(data, full.forward(batchInput(data, batchOf(data, 0, 12))), batchOf(data, 0, 12));
    backward(fullLoss);

    const transports = createInProcessTransports(2, { timeoutMs: 5000 });
    const results = await Promise.all(transports.map(async (t, r) => {
      const model = bigram(5);
      const ctx = { model, optimizer: makeOptimizer(model.arena(), { name: 'sgd', lr: 0.1 }) };
      const strategy = new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 5000 }));
      await strategy.setup(ctx);
      const loss = batchLoss(data, model.forward(batchInput(data, parts[r])), parts[r]);
      backward(loss);
      const reduced = await strategy.reduceGradients(ctx, loss.item(), lossWeight(data, parts[r]), 0);
      return { grad: model.arena().grads.readSync().slice(), loss: reduced.loss };
    }));
    const want = full.arena().grads.readSync();
    for (const { grad, loss } of results) {
      assert.ok(Math.abs(loss - fullLoss.item()) < 1e-5, `loss ${loss} vs ${fullLoss.item()}`);
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(grad[i] - want[i]) < 1e-6, `grad[${i}] ${grad[i]} vs ${want[i]}`);
    }
  });

  it('evaluate: loss per scored token whatever the batch size, token accuracy, perplexity = exp(loss)', async () => {
    const data = maskedSet(10);
    const model = bigram(2);
    const whole = await evaluate(model, data, 10);
    const small = await evaluate(model, data, 3);
    const logits = model.forward(batchInput(data, batchOf(data, 0, 10)));
    assert.ok(Math.abs(whole.loss - referenceLoss(logits.values() as Float32Array, data.labels)) < 1e-5);
    assert.ok(Math.abs(small.loss - whole.loss) < 1e-5, 'batching must not change the per-token mean');
    assert.equal(whole.perplexity, Math.exp(whole.loss));
    const accuracy = whole.accuracy ?? NaN;
    assert.ok(accuracy >= 0 && accuracy <= 1);
    // A language-model labelled with the argmax prediction scores 100%.
    const pred = new Int32Array(10 * T);
    for (let r = 0; r < pred.length; r++) {
      const row = logits.values().subarray(r * VOCAB, (r + 1) * VOCAB);
      pred[r] = row.indexOf(Math.max(...row));
    }
    const perfect: TokenDataset = { ...data, task: 'language-model', labels: pred };
    assert.equal((await evaluate(model, perfect, 4)).accuracy, 1);
    // GPT-2's vocabulary at context 128: 2 sequences' logits are 51 MB, 1000 would be 26 GB.
    assert.equal(evalBatchSize({ ...data, inputShape: [128], vocabSize: 50257 }, 1000), 2);
    assert.equal(evalBatchSize(data, 1000), 1000);
  });
});
