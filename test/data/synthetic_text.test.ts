import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IGNORE_INDEX } from '../../src/data/dataset.js';
import { MarkovChain } from '../../src/data/markov.js';
import { SYNTHETIC_TEXT_DEFAULTS, syntheticText } from '../../src/data/synthetic_text.js';
import { Embedding } from '../../src/nn/layers/embedding.js';
import { makeOptimizer } from '../../src/nn/optim/index.js';
import { backward } from '../../src/tensor/autograd.js';
import { evaluate } from '../../src/train/loop/evaluate.js';
import { batchInput, batchLoss } from '../../src/train/loop/objective.js';
import { BatchLoader, type TokenBatch } from '../../src/data/loader.js';
import { Rng } from '../../src/util/rng.js';

describe('synthetic_text', () => {
  it('is deterministic from the seed; language-model labels are the next tokens; train and test differ', () => {
    const a = syntheticText({ seed: 4, samples: 20, split: 'train', task: 'language-model', contextLength: 16 });
    const b = syntheticText({ seed: 4, samples: 20, split: 'train', task: 'language-model', contextLength: 16 });
    const test = syntheticText({ seed: 4, samples: 20, split: 'test', task: 'language-model', contextLength: 16 });
    const other = syntheticText({ seed: 5, samples: 20, split: 'train', task: 'language-model', contextLength: 16 });
    assert.deepEqual(a.inputs, b.inputs);
    assert.deepEqual(a.labels, b.labels);
    assert.notDeepEqual(a.inputs, test.inputs);
    assert.notDeepEqual(a.inputs, other.inputs);
    assert.deepEqual(a.inputShape, [16]);
    assert.equal(a.vocabSize, SYNTHETIC_TEXT_DEFAULTS.vocab);
    for (let i = 0; i < a.size; i++) {
      for (let t = 0; t < 15; t++) assert.equal(a.labels[i * 16 + t], a.inputs[i * 16 + t + 1]);
    }
    // A longer draw starts with the same sequences (each has its own stream).
    const more = syntheticText({ seed: 4, samples: 30, split: 'train', task: 'language-model', contextLength: 16 });
    assert.deepEqual(more.inputs.subarray(0, a.inputs.length), a.inputs);
  });

  it('the default set (seed 0, context 64): floor 1.353 nats per token (perplexity 3.87) against log 64 = 4.159', () => {
    // An option given as undefined (a config without --context) keeps the default.
    const d = syntheticText({ seed: 0, samples: 1, split: 'train', task: 'language-model', contextLength: undefined });
    assert.deepEqual(d.inputShape, [64]);
    assert.ok(Math.abs((d.bestLoss ?? NaN) - 1.353) < 0.0005, `bestLoss ${d.bestLoss}`);
    assert.ok(Math.abs(Math.exp(d.bestLoss ?? NaN) - 3.87) < 0.005);
    // Order 1: every position sees the whole state, so the floor is the entropy rate.
    assert.ok(Math.abs(d.entropyRate - (d.bestLoss ?? NaN)) < 1e-9, `entropy rate ${d.entropyRate}`);
  });

  it('masked-lm scores ~15 % of positions (original token as label), mostly replaced by the mask token', () => {
    const d = syntheticText({ seed: 1, samples: 200, split: 'train', task: 'masked-lm', contextLength: 32 });
    assert.equal(d.vocabSize, SYNTHETIC_TEXT_DEFAULTS.vocab + 1);
    assert.equal(d.maskToken, SYNTHETIC_TEXT_DEFAULTS.vocab);
    let scored = 0;
    let masked = 0;
    for (let i = 0; i < d.labels.length; i++) {
      if (d.labels[i] === IGNORE_INDEX) continue;
      scored++;
      if (d.inputs[i] === d.maskToken) masked++;
    }
    const share = scored / d.labels.length;
    assert.ok(share > 0.12 && share < 0.18, `scored share ${share}`);
    assert.ok(masked / scored > 0.75 && masked / scored < 0.85, `masked share ${masked / scored}`);
    for (const x of d.inputs) assert.ok(Number.isInteger(x) && x >= 0 && x < d.vocabSize);
  });

  it('bestLoss is the chain\'s own mean log-loss on its sequences (order 1 and 2), between 0 and log vocab', () => {
    for (const order of [1, 2]) {
      const o = { seed: 9, vocab: 12, order, successors: 3, epsilon: 0.05 };
      const chain = new MarkovChain(o);
      assert.ok(Math.abs(chain.stationary.reduce((a, b) => a + b, 0) - 1) < 1e-9);
      const T = 8;
      const best = chain.bestLoss(T);
      assert.ok(best > 0 && best < Math.log(o.vocab), `bestLoss ${best}`);
      // The Bayes-optimal predictor's loss on 3000 sampled sequences: equal up to sampling error.
      const rng = new Rng(3);
      const seq = new Int32Array(T + 1);
      let sum = 0;
      const n = 3000;
      for (let i = 0; i < n; i++) {
        chain.sample(rng, seq);
        for (let t = 0; t < T; t++) sum -= Math.log(chain.probability(seq.subarray(0, t + 1), seq[t + 1]));
      }
      const measured = sum / (n * T);
      assert.ok(Math.abs(measured - best) < 0.03, `order ${order}: measured ${measured} vs bestLoss ${best}`);
    }
  });

  it('a small model learns it: a bigram table trained on an order-1 chain ends near the floor, far below log vocab', async () => {
    const common = { seed: 2, task: 'language-model' as const, contextLength: 16, vocab: 16, order: 1 };
    const train = syntheticText({ ...common, samples: 512, split: 'train' });
    const test = syntheticText({ ...common, samples: 128, split: 'test' });
    const model = new Embedding(16, 16, new Rng(0));
    const optimizer = makeOptimizer(model.arena(), { name: 'adam', lr: 0.1 });
    const order = Int32Array.from({ length: train.size }, (_, i) => i);
    const before = (await evaluate(model, test, 128)).loss;
    for (let epoch = 0; epoch < 4; epoch++) {
      for (const batch of new BatchLoader(train, order, 32).batches() as Iterable<TokenBatch>) {
        model.zeroGrad();
        backward(batchLoss(train, model.forward(batchInput(train, batch)), batch));
        optimizer.step();
      }
    }
    const after = await evaluate(model, test, 128);
    const best = train.bestLoss ?? NaN;
    assert.ok(before > Math.log(16), `untrained loss ${before}`);
    assert.ok(after.loss < best + 0.1, `trained loss ${after.loss}, floor ${best}`);
    assert.ok(after.loss > best - 0.1, `a loss below the floor (${after.loss} < ${best}) would mean the floor is wrong`);
    assert.equal(after.perplexity, Math.exp(after.loss));
  });
});
