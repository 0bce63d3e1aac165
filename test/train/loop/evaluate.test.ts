import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import type { Dataset } from '../../../src/data/dataset.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { createModel, defaultSpec } from '../../../src/nn/index.js';
import { gpt2Spec } from '../../../src/nn/models/presets.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { EVAL_BYTES, type EvalSums, evalResult, evaluate, evaluationLoop, sharedEvaluationLoop } from '../../../src/train/loop/evaluate.js';
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

/** 3 ranks' shared evaluation of `data`, each rank's budget its own; the batch sizes each rank's forward saw (0: an empty share). */
async function shared(data: Dataset, batchSize: number, budgets: (number | undefined)[]): Promise<{ sums: EvalSums[]; sizes: number[][] }> {
  const groups = createInProcessTransports(3, { timeoutMs: 10_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 10_000 }));
  const sizes: number[][] = [[], [], []];
  const sums = await Promise.all(groups.map((g) => {
    const m = model();
    const share = { rank: g.rank, count: g.size, allGather: (v: Float32Array) => g.allGather(v) };
    return sharedEvaluationLoop(m, data, batchSize, (batch, within) => {
      sizes[g.rank].push(batch?.size ?? 0);
      return batch && within(() => noGrad(() => m.forward(batchInput(data, batch))));
    }, share, { bytesBudget: budgets[g.rank] });
  }));
  return { sums, sizes };
}

test('ranks sharing an evaluation score consecutive shares of every batch, an empty share at the end, and add up to one process\'s sums', async () => {
  const data = syntheticClassification({ seed: 5, samples: 14, inputShape: [1, 28, 28], numClasses: 10, noise: 4 });
  const m = model();
  const one = await evaluationLoop(m, data, 1000, (batch) => noGrad(() => m.forward(batchInput(data, batch))));
  const { sums, sizes } = await shared(data, 4, [undefined, undefined, undefined]);
  // Batches of 3 × 4: 12 samples as 4, 4, 4, then the last 2 as 1, 1 and nothing.
  assert.deepEqual(sizes, [[4, 1], [4, 1], [4, 0]]);
  for (const s of sums) {
    assert.equal(s.weight, one.weight);
    assert.equal(s.correct, one.correct);
    assert.ok(Math.abs(s.loss - one.loss) < 1e-6 * one.loss, `${s.loss} vs ${one.loss}`);
  }
});

test('ranks sharing an evaluation run the same batches: the smallest size that fits every rank\'s budget', async () => {
  const data = syntheticClassification({ seed: 5, samples: 14, inputShape: [1, 28, 28], numClasses: 10, noise: 4 });
  // Rank 1 fits one sample a batch, the others everything: after the one-sample probe all run one each.
  const { sums, sizes } = await shared(data, 1000, [EVAL_BYTES, 1, EVAL_BYTES]);
  assert.deepEqual(sizes, [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]);
  assert.equal(sums[0].weight, 14);
  assert.deepEqual(sums[1], sums[0]);
});
