/**
 * storage_copy.ts: host-addressed values (the cpu's) are written to any device; values on the
 * target's own device are copied there by a kernel, bit for bit; a device the host cannot map
 * (far_device.ts) cannot reach another device without an awaited read, and canCopy says so first.
 */
// run-tests: own process (it opens and closes a WebGPU device in its hooks: imported beside the other tensor/ files, a device copy was aborted)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import '../../../src/tensor/dispatch.js'; // registers the cpu device
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { type Storage, deviceMemory } from '../../../src/tensor/storage.js';
import { canCopy, copyInto, copyTo } from '../../../src/tensor/boundary/storage_copy.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';
import { far } from '../../helpers/far_device.js';

const on = (device: string, v: number[]): Storage<Float32Array> => deviceMemory(device).fromHost(Float32Array.from(v)) as Storage<Float32Array>;

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

describe('copying between storages without a host read', () => {
  it('cpu into cpu at an offset, leaving the rest alone', async () => {
    const to = on('cpu', [9, 9, 9, 9]);
    copyInto(to, on('cpu', [1, 2]), 1);
    assert.deepEqual([...(await to.read())], [9, 1, 2, 9]);
  });

  it('copyTo gives a new storage on the device with the values', async () => {
    const from = on('cpu', [3, -0]);
    const to = copyTo(from, 'cpu');
    assert.notEqual(to, from);
    assert.deepEqual([...(await to.read())], [3, -0]);
    assert.ok(Object.is((await to.read())[1], -0));
  });

  it('refuses a device the host cannot map, onto another device; canCopy tells before', () => {
    const s = far([1, 2]);
    assert.equal(canCopy(s, 'cpu'), false);
    assert.equal(canCopy(s, 'far'), true);
    assert.equal(canCopy(on('cpu', [1]), 'far'), true);
    assert.throws(() => copyInto(on('cpu', [0, 0]), s), /far values cannot reach cpu without an awaited read/);
  });

  it('webgpu: host values upload, and a webgpu storage is copied on the device bit for bit (−0 stays −0)', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const up = copyTo(on('cpu', [1, 2, 3]), 'webgpu');
    assert.equal(up.device, 'webgpu');
    assert.deepEqual([...(await up.read())], [1, 2, 3]);
    const to = on('webgpu', [7, 7, 7, 7, 7]);
    copyInto(to, on('webgpu', [-0, 1.5, 1e30]), 2);
    const got = await to.read();
    assert.deepEqual([...got.subarray(0, 3)], [7, 7, -0]);
    assert.ok(Object.is(got[2], -0), 'the copy keeps the sign of zero');
    assert.deepEqual([...got.subarray(3)], [1.5, Math.fround(1e30)]);
  });
});
