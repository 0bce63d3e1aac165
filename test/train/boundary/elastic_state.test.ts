/**
 * ElasticState (train/boundary/elastic_state.ts): the commits an elastic run rolls back to, on the cpu and
 * on a GPU (SwiftShader here), where each commit is read to the host and a rollback or a received
 * hand-over is written back to the device. Skipped on the GPU side when webgpu cannot load, except
 * under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BatchNorm } from '../../../src/nn/layers/norm.js';
import { Linear } from '../../../src/nn/layers/linear.js';
import { Sequential } from '../../../src/nn/layers/sequential.js';
import type { Module } from '../../../src/nn/module.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import type { Optimizer } from '../../../src/nn/optim/optimizer.js';
import { backward } from '../../../src/tensor/autograd.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { StorageCollectives } from '../../../src/parallel/boundary/storage_collectives.js';
import { ElasticState } from '../../../src/train/boundary/elastic_state.js';
import { Rng } from '../../../src/util/rng.js';
import { makeWorld } from '../../comm/fixture.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

/** Linear → batch norm (running statistics: buffers) → linear, with AdamW (state), on `device`. */
function setup(device: string): { model: Module; opt: Optimizer } {
  const rng = new Rng(1);
  const model = new Sequential(new Linear(6, 8, rng), new BatchNorm(8), new Linear(8, 4, rng)).to(device);
  return { model, opt: makeOptimizer(model.arena(), { name: 'adamw', lr: 0.01 }) };
}

function trainStep(model: Module, opt: Optimizer, device: string, seed: number): void {
  const rng = new Rng(seed);
  const x = Tensor.from(Float32Array.from({ length: 4 * 6 }, () => rng.normal()), [4, 6], 'float32', device);
  model.zeroGrad();
  backward(crossEntropy(model.forward(x), Int32Array.of(1, 3, 0, 2)));
  opt.step();
}

/** Parameters, buffers and optimizer state, read to the host. */
async function snapshot(model: Module, opt: Optimizer): Promise<Float32Array[]> {
  const all = [model.arena().params, ...model.namedBufferStorages().map(([, b]) => b), ...opt.stateStorages()];
  return Promise.all(all.map(async (s) => Float32Array.from(await s.read())));
}

for (const device of ['cpu', 'webgpu']) {
  describe(`ElasticState on ${device}`, () => {
    it('restore puts parameters, buffers, optimizer state and steps back to a commit', async (t) => {
      if (device === 'webgpu' && !load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const { model, opt } = setup(device);
      const state = new ElasticState(model, opt);
      trainStep(model, opt, device, 1);
      await state.commit(1, { epoch: 0, offset: 2 });
      const committed = await snapshot(model, opt);
      trainStep(model, opt, device, 2);
      await state.commit(2, { epoch: 0, offset: 4 });
      trainStep(model, opt, device, 3);
      const moved = await snapshot(model, opt);
      assert.notDeepEqual(moved[0], committed[0], 'training moved the parameters');
      assert.deepEqual(state.restore(1), { epoch: 0, offset: 2 });
      assert.equal(opt.steps, 1);
      assert.deepEqual(await snapshot(model, opt), committed);
      assert.equal(state.restore(2), null, 'a newer commit is dropped by the rollback');
    });

    it('a hand-over: one member\'s host buffers installed into another\'s model', async (t) => {
      if (device === 'webgpu' && !load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const from = setup(device);
      trainStep(from.model, from.opt, device, 1);
      const to = setup(device);
      const world = await makeWorld('inproc', 2);
      try {
        const members = [from, to].map((m) => new ElasticState(m.model, m.opt));
        await Promise.all(members.map((s, r) => s.broadcastFrom(new StorageCollectives(world.groups[r]), 0)));
      } finally {
        await world.close();
      }
      assert.deepEqual(await snapshot(to.model, to.opt), await snapshot(from.model, from.opt));
    });
  });
}
