/**
 * modelOnHost (train/model_on_host.ts), what `--save` writes from: a cpu model is itself; a GPU
 * model (SwiftShader here) becomes a host copy with its parameters, batch-norm running statistics
 * and batch counts, and a model with frozen parameters (--freeze: an arena of the trained ones only)
 * copied by name. Skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BatchNorm } from '../../../src/nn/layers/norm.js';
import { freezeMatching } from '../../../src/nn/lora/index.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { setBackend } from '../../../src/tensor/dispatch.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { modelOnHost } from '../../../src/train/boundary/model_on_host.js';
import { Rng } from '../../../src/util/rng.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const spec = defaultSpec('resnet18', [3, 8, 8], 4, { width: 4 });

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  setBackend('js');
});
after(() => closeWebGpu());

describe('modelOnHost', () => {
  it('cpu: the model itself', async () => {
    const m = createModel(spec, 1);
    assert.equal(await modelOnHost(m, spec), m);
  });

  it('webgpu: a host copy with the trained parameters, running statistics and batch counts', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const m = createModel(spec, 1).to('webgpu');
    const rng = new Rng(3);
    // One training-mode forward updates every batch norm's running statistics on the GPU.
    m.forward(Tensor.from(Float32Array.from({ length: 2 * 3 * 8 * 8 }, () => rng.normal()), [2, 3, 8, 8], 'float32', 'webgpu'));
    const host = await modelOnHost(m, spec);
    assert.equal(host.arena().device, 'cpu');
    assert.deepEqual(host.arena().params.readSync(), await m.arena().params.read());
    const gpuBuffers = await m.readBuffers();
    const hostBuffers = host.namedBuffers();
    assert.deepEqual(hostBuffers.map(([n]) => n), gpuBuffers.map(([n]) => n));
    hostBuffers.forEach(([n, b], i) => assert.deepEqual(b, gpuBuffers[i][1], n));
    assert.ok(hostBuffers[0][1].some((v) => v !== 0), 'the running mean was updated on the GPU');
    const counts = host.namedModules().filter(([, l]) => l instanceof BatchNorm).map(([, l]) => (l as BatchNorm).batchesTracked);
    assert.ok(counts.length > 0 && counts.every((c) => c === 1), `batch counts ${counts.join(',')}`);
  });

  it('webgpu with --freeze: the frozen parameters (outside the arena) and the trained ones, each by name', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const m = createModel(spec, 1);
    assert.equal(freezeMatching(m, 'conv1.weight,layer1.**').length > 1, true);
    m.to('webgpu');
    const host = await modelOnHost(m, spec);
    const want = createModel(spec, 1).namedParameters();
    assert.deepEqual(host.namedParameters().map(([n]) => n), want.map(([n]) => n));
    host.namedParameters().forEach(([n, p], i) => assert.deepEqual(p.values(), want[i][1].values(), n));
  });
});
