/**
 * HostArena (train/boundary/host_arena.ts): on the cpu the arena's own memory, nothing copied; on a GPU
 * (SwiftShader here) an awaited copy that goes back to the device at the flush when it was taken
 * for writing, and only then. Skipped on the GPU side when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ParamArena } from '../../../src/nn/arena.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { hostArena } from '../../../src/train/boundary/host_arena.js';
import { mappedMemory } from '../../../src/tensor/boundary/host_values.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

function arena(device: string): ParamArena {
  return ParamArena.pack([['w', Tensor.from([1, 2, 3], [3])], ['b', Tensor.from([4], [1])]], new Set(), device);
}

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

describe('HostArena', () => {
  it('cpu: hands out the arena\'s own arrays (zero-copy, synchronously) and writes nothing back', async () => {
    const a = arena('cpu');
    const host = hostArena(a);
    assert.equal(mappedMemory(a.params), a.params.readSync(), 'the arena is host memory: nothing to read or write back');
    assert.equal(host.params(), a.params.readSync());
    assert.equal(await host.grads(), a.grads.readSync());
    assert.equal(host.gradStorageNow(), a.grads);
    host.gradsNow()[0] = 7;
    host.flush();
    assert.equal(a.grads.readSync()[0], 7);
  });

  it('webgpu: an awaited copy, written back at the flush only when taken for writing', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const a = arena('webgpu');
    const host = hostArena(a);
    assert.equal(mappedMemory(a.params), undefined, 'the arena is not host memory: read and written back');
    assert.throws(() => host.gradsNow(), /used on the host before they were read/);
    const params = await host.params(false);
    assert.deepEqual([...params], [1, 2, 3, 4]);
    params[0] = 100; // taken read-only: not written back
    const grads = await host.grads();
    assert.equal(host.gradsNow(), grads);
    grads.set([1, 1, 1, 1]);
    host.flush();
    assert.deepEqual([...(await a.params.read())], [1, 2, 3, 4]);
    assert.deepEqual([...(await a.grads.read())], [1, 1, 1, 1]);
    assert.throws(() => host.paramsNow(), /before they were read/, 'the flush forgets the copies');
    // A read still under way at a flush belongs to the hook before it: it is dropped.
    const late = host.params();
    host.flush();
    await late;
    assert.throws(() => host.paramsNow(), /before they were read/);
    host.paramsToOverwrite().set([9, 9, 9, 9]);
    host.flush();
    assert.deepEqual([...(await a.params.read())], [9, 9, 9, 9]);
  });

  it('gradRange: cpu hands out the arena\'s own range; webgpu reads range by range and writes back only the ranges read', async (t) => {
    const c = arena('cpu');
    c.grads.write([1, 2, 3, 4]);
    const view = hostArena(c).gradRange(1, 3) as Float32Array;
    assert.equal(view.buffer, c.grads.readSync().buffer, 'cpu: a view of the arena itself');
    assert.deepEqual([...view], [2, 3]);
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const a = arena('webgpu');
    a.grads.write([1, 2, 3, 4]);
    const host = hostArena(a);
    const first = await host.gradRange(2, 4);
    assert.deepEqual([...first], [3, 4]);
    first.set([30, 40]);
    assert.throws(() => host.grads(), /range by range/, 'the whole gradients are not there to hand out');
    a.grads.write([-1, -2], 0); // a range never read stays the device's own
    host.flush();
    assert.deepEqual([...(await a.grads.read())], [-1, -2, 30, 40]);
    // A range still being read at a flush is dropped, and nothing is written for it.
    const late = host.gradRange(0, 2);
    host.flush();
    (await late).fill(99);
    host.flush();
    assert.deepEqual([...(await a.grads.read())], [-1, -2, 30, 40]);
  });
});
