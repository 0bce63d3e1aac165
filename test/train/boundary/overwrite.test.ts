/**
 * Storages replaced whole by received values (tensor/boundary/host_values.ts: valuesToReceive, installAll;
 * once tensor/overwrite.ts's arraysToOverwrite / writeOverwritten): on the cpu the storages' own memory
 * (receiving is installing); on a GPU (SwiftShader here) fresh zeroed arrays written to the device
 * afterwards. Skipped on the GPU side when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { type Storage, deviceMemory } from '../../../src/tensor/storage.js';
import { installAll, valuesToReceive } from '../../../src/tensor/boundary/host_values.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const arraysToOverwrite = (s: readonly Storage<Float32Array>[]): Float32Array[] => s.map(valuesToReceive);
const writeOverwritten = installAll;

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

const storages = (device: string): Storage<Float32Array>[] =>
  [[1, 2, 3], [4, 5]].map((v) => deviceMemory(device).fromHost(Float32Array.from(v)) as Storage<Float32Array>);

describe('arrays to overwrite', () => {
  it('cpu: the storages\' own arrays, so what is received into them is installed', () => {
    const s = storages('cpu');
    const arrays = arraysToOverwrite(s);
    arrays.forEach((a, i) => assert.equal(a, s[i].readSync()));
    arrays[1].set([7, 8]);
    writeOverwritten(s, arrays);
    assert.deepEqual([...s[1].readSync()], [7, 8]);
  });

  it('webgpu: fresh zeroed arrays of each size, written to the device only by writeOverwritten', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const s = storages('webgpu');
    const arrays = arraysToOverwrite(s);
    assert.deepEqual(arrays.map((a) => [...a]), [[0, 0, 0], [0, 0]]);
    arrays[0].set([9, 8, 7]);
    assert.deepEqual([...(await s[0].read())], [1, 2, 3], 'nothing reaches the device before it is written');
    writeOverwritten(s, arrays);
    assert.deepEqual(await Promise.all(s.map(async (x) => [...(await x.read())])), [[9, 8, 7], [0, 0]]);
  });
});
