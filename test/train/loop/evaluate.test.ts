import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Dataset } from '../../../src/data/dataset.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { createModel, defaultSpec } from '../../../src/nn/index.js';
import { gpt2Spec } from '../../../src/nn/models/presets.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { evalResult, evaluate, evaluationLoop } from '../../../src/train/loop/evaluate.js';
import { batchInput } from '../../../src/train/loop/objective.js';

function model() {
  return createModel(defaultSpec('mlp', [1, 28, 28], 10), 5);
}

/** The batch sizes `evaluate` runs `m`'s forward on. */
function recordBatches(m: ReturnType<typeof model>): number[] {
  const sizes: number[] = [];
  const forward = m.forward.bind(m);
  m.forward = (x: Tensor) => {
    sizes.push(x.shape[0]);
    return forward(x);
  };
  return sizes;
}

test('evaluation batches shrink to the byte budget measured on a first batch of one sample, with the same result', async () => {
  const data = syntheticClassification({ seed: 2, samples: 700, inputShape: [1, 28, 28], numClasses: 10, noise: 4 });
  const whole = model();
  const wholeSizes = recordBatches(whole);
  const big = await evaluate(whole, data, 1000);
  assert.deepEqual(wholeSizes, [1, 699], 'an MLP fits 1000 samples in 256 MB: a probe, then the rest at once');
  const small = model();
  const sizes = recordBatches(small);
  // The probe's buffers: 784 inputs + 128 hidden (linear, relu) + 10 logits floats and a few scalars.
  const limited = await evaluate(small, data, 1000, 100 * 1024);
  assert.equal(sizes[0], 1);
  assert.ok(sizes.length > 4 && sizes.slice(1, -1).every((n) => n === sizes[1] && n < 100), `batches ${sizes}`);
  assert.equal(sizes.reduce((a, b) => a + b, 0), 700);
  assert.equal(limited.accuracy, big.accuracy);
  assert.ok(Math.abs(limited.loss - big.loss) < 1e-6 * Math.abs(big.loss), `${limited.loss} vs ${big.loss}`);
});

test('a small set is the one-sample probe, then the rest in one batch', async () => {
  const data = syntheticClassification({ seed: 2, samples: 20, inputShape: [1, 28, 28], numClasses: 10, noise: 4 });
  const m = model();
  const sizes = recordBatches(m);
  assert.equal((await evaluate(m, data)).samples, 20);
  assert.deepEqual(sizes, [1, 19]);
});

test('the evaluation loop scores what forward gives in batches of the requested size, in eval mode; null scores nothing', async () => {
  const data = syntheticClassification({ seed: 3, samples: 90, inputShape: [1, 28, 28], numClasses: 10, noise: 4 });
  const m = model();
  const want = await evaluate(m, data, 1000);
  const sizes: number[] = [];
  const modes: boolean[] = [];
  const sums = await evaluationLoop(m, data, 40, (batch) => {
    sizes.push(batch.size);
    modes.push(m.training);
    return noGrad(() => m.forward(batchInput(data, batch)));
  });
  assert.deepEqual(sizes, [40, 40, 10]);
  assert.deepEqual(modes, [false, false, false]);
  assert.equal(m.training, true, 'training mode is restored');
  const got = evalResult(data, sums);
  assert.equal(got.accuracy, want.accuracy);
  assert.ok(Math.abs(got.loss - want.loss) < 1e-6 * Math.abs(want.loss), `${got.loss} vs ${want.loss}`);
  // A rank that scores nothing (an earlier pipeline stage) ends with empty sums.
  assert.deepEqual(await evaluationLoop(m, data, 40, () => null), { loss: 0, weight: 0, correct: 0 });
});

test('every batch holds the byte budget, the first one too: one sample a batch when one sample is over it', async () => {
  const data = syntheticClassification({ seed: 2, samples: 40, inputShape: [1, 28, 28], numClasses: 10, noise: 4 });
  const m = model();
  const sizes = recordBatches(m);
  const tight = await evaluate(m, data, 1000, 1);
  assert.deepEqual(sizes, new Array(40).fill(1));
  const whole = await evaluate(model(), data, 1000);
  assert.equal(tight.accuracy, whole.accuracy);
  assert.ok(Math.abs(tight.loss - whole.loss) < 1e-6 * Math.abs(whole.loss), `${tight.loss} vs ${whole.loss}`);
});

test('a language model\'s metrics are means over the same tokens whatever the evaluation batch (1, 5, the whole set)', async () => {
  const data = syntheticText({ seed: 4, samples: 23, split: 'test', task: 'language-model', contextLength: 16, vocab: 32 });
  const lm = createModel(gpt2Spec('gpt2-tiny', 32, 16, { layers: 2, width: 32, heads: 2 }), 6);
  const whole = await evaluate(lm, data, 1000);
  for (const size of [1, 5]) {
    const got = await evaluate(lm, data, size);
    assert.equal(got.accuracy, whole.accuracy, `batch ${size}`);
    assert.ok(Math.abs(got.loss - whole.loss) < 1e-6 * whole.loss, `batch ${size}: ${got.loss} vs ${whole.loss}`);
    assert.equal(got.perplexity, Math.exp(got.loss));
  }
});

