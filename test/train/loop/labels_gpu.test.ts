/**
 * Labels and predictions on the device the loss runs on (objective.ts batchLabels, evaluate.ts
 * scoreOutput): a batch's labels reach a GPU loss as an int32 tensor there, with the scored
 * positions counted on the host, and give the cpu's loss; the accuracy's argmax runs on the GPU
 * and is read with await, so a GPU evaluation equals the cpu's. On SwiftShader here; skipped when
 * webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IGNORE_INDEX, type TokenDataset } from '../../../src/data/dataset.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { BatchLoader } from '../../../src/data/loader.js';
import { createModel, defaultSpec } from '../../../src/nn/index.js';
import { Embedding } from '../../../src/nn/layers/embedding.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { argmax } from '../../../src/tensor/ops/reduce.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { evaluate } from '../../../src/train/loop/evaluate.js';
import { type AnyBatch, batchInput, batchLabels, batchLoss, lossWeight } from '../../../src/train/loop/objective.js';
import { Rng } from '../../../src/util/rng.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const VOCAB = 7;
const T = 5;

/** Random ids with a varying number of scored positions per sequence (some none), as a masked LM's. */
function maskedSet(size: number): TokenDataset {
  const rng = new Rng(3);
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

function firstBatch(data: TokenDataset, size: number): AnyBatch {
  return new BatchLoader(data, Int32Array.from({ length: size }, (_, i) => i), size).batches().next().value as AnyBatch;
}

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

describe('labels and predictions on the GPU', () => {
  it('batchLabels: an int32 tensor on the device, the scored positions counted on the host; bad labels refused by name', async (t) => {
    const data = maskedSet(12);
    const batch = firstBatch(data, 12);
    const cpu = batchLabels(data, batch, 'cpu', VOCAB);
    assert.equal(cpu.labels.dtype, 'int32');
    assert.equal(cpu.scored, lossWeight(data, batch));
    assert.throws(() => batchLabels(data, { ...batch, labels: Int32Array.of(0, VOCAB) } as AnyBatch, 'cpu', VOCAB), /crossEntropy: label 7 at row 1 is outside \[0, 7\)/);
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const gpu = batchLabels(data, batch, 'webgpu', VOCAB);
    assert.deepEqual([gpu.labels.device, gpu.labels.dtype, gpu.scored], ['webgpu', 'int32', cpu.scored]);
    assert.deepEqual([...(await gpu.labels.read())], [...(await cpu.labels.read())], 'IGNORE_INDEX travels as the engine\'s -1');
  });

  it('a token task\'s loss on the GPU, its labels there, is the cpu\'s', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const data = maskedSet(12);
    const batch = firstBatch(data, 12);
    const model = new Embedding(VOCAB, VOCAB, new Rng(5));
    const want = (await noGrad(() => batchLoss(data, model.forward(batchInput(data, batch)), batch)).read())[0];
    model.to('webgpu');
    const got = (await noGrad(() => batchLoss(data, model.forward(batchInput(data, batch, 'webgpu')), batch)).read())[0];
    assert.ok(Math.abs(got - want) <= 1e-6 * Math.abs(want), `${got} vs ${want}`);
  });

  it('argmax resolves on the GPU through an async read; a GPU evaluation\'s accuracy and loss are the cpu\'s', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    assert.deepEqual([...(await argmax(Tensor.from([0, 9, 7, 2, 1, 1], [3, 2], 'float32', 'webgpu')))], [1, 0, 0]);
    const data = syntheticClassification({ seed: 2, samples: 90, inputShape: [1, 8, 8], numClasses: 4, noise: 2 });
    const cpuModel = createModel(defaultSpec('mlp', [1, 8, 8], 4), 6);
    const gpuModel = createModel(defaultSpec('mlp', [1, 8, 8], 4), 6).to('webgpu');
    const want = await evaluate(cpuModel, data, 40);
    const got = await evaluate(gpuModel, data, 40);
    assert.equal(got.accuracy, want.accuracy);
    assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * Math.abs(want.loss), `${got.loss} vs ${want.loss}`);
  });
});
