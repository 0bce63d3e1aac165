/**
 * Packed windows on the webgpu device (SwiftShader without a GPU): a tiny Llama's packed forward
 * and backward (per-token rotary positions, attention split at each sequence) give the cpu's loss
 * and gradients. Skipped when the backend cannot load, except under CI=true.
 */
import { after, before, describe, it } from 'node:test';
import { packTokens } from '../../../src/nn/layers/packed_sequences.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import { backward } from '../../../src/tensor/autograd.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { backend, setBackend } from '../../../src/tensor/dispatch.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import type { Device } from '../../../src/tensor/storage.js';
import { Rng } from '../../../src/util/rng.js';
import { assertClose } from '../../helpers/tensors.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 29, context: 32, layers: 1, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const T = 12;
// Row 0: sequences of 5, 4 and a tail of 3; row 1: 7 then 5.
const POSITIONS = Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4]);
const rng = new Rng(4);
const IDS = Int32Array.from({ length: 2 * T }, () => rng.int(SPEC.vocabSize));
const LABELS = Int32Array.from(POSITIONS, (p, i) => (i + 1 < 2 * T && POSITIONS[i + 1] === p + 1 ? IDS[i + 1] : -100));

async function packedStep(device: Device): Promise<{ loss: Float32Array; grads: Float32Array }> {
  const model = createModel(SPEC, 2);
  if (device === 'webgpu') model.to('webgpu');
  const ids = packTokens(Tensor.fromHost(IDS, [2, T], false, device), POSITIONS);
  const loss = crossEntropy(model.forward(ids), Tensor.fromHost(LABELS, [2 * T], false, device), LABELS.filter((l) => l !== -100).length);
  backward(loss);
  return { loss: Float32Array.from(await loss.read()), grads: Float32Array.from(await model.arena().grads.read()) };
}

let load: WebGpuLoad;
const previous = backend().name;

describe('packed windows on the webgpu device', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
    setBackend('js');
  });
  after(() => {
    setBackend(previous);
    closeWebGpu();
  });

  it('a tiny Llama\'s packed loss and gradients equal the cpu\'s', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const cpu = await packedStep('cpu');
    const gpu = await packedStep('webgpu');
    assertClose(gpu.loss, cpu.loss, { rtol: 1e-5, msg: 'loss' });
    assertClose(gpu.grads, cpu.grads, { rtol: 1e-4, atol: 1e-6, msg: 'gradients' });
  });
});
