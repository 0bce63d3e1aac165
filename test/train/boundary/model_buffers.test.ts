/**
 * model_buffers.ts: a strategy's exchange of a model's buffers. On the cpu it works on the buffers
 * themselves; on a GPU (SwiftShader here) on awaited copies written back after. Skipped on the GPU
 * side when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { buffersToOverwrite, exchangeBuffers } from '../../../src/train/boundary/model_buffers.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const spec = defaultSpec('resnet18', [3, 8, 8], 4, { width: 4 });

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

for (const device of ['cpu', 'webgpu']) {
  describe(`host buffers on ${device}`, () => {
    it('exchangeBuffers: what the exchange writes into each buffer reaches the model', async (t) => {
      if (device === 'webgpu' && !load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const m = createModel(spec, 1).to(device);
      const seen: Float32Array[] = [];
      await exchangeBuffers(m, async (b) => {
        seen.push(b);
        b.fill(seen.length);
      });
      const after = await m.readBuffers();
      assert.equal(seen.length, after.length);
      after.forEach(([n, b], i) => assert.ok(b.every((v) => v === i + 1), `${n} holds ${i + 1}`));
      if (device === 'cpu') assert.equal(seen[0], m.namedBuffers()[0][1], 'cpu: the buffer itself, no copy');
    });

    it('buffersToOverwrite + writeBuffers: received values replace the buffers', async (t) => {
      if (device === 'webgpu' && !load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const m = createModel(spec, 1).to(device);
      const received = buffersToOverwrite(m);
      received.forEach((b, i) => b.fill(-i));
      m.writeBuffers(received);
      (await m.readBuffers()).forEach(([n, b], i) => assert.ok(b.every((v) => v === -i), `${n} holds ${-i}`));
    });
  });
}
