/**
 * host_values.ts: on the cpu a storage's own memory is handed out (sending reads nothing, receiving
 * installs); on a device the host cannot map (far_device.ts, and webgpu on SwiftShader under
 * CI=true) a copy is read, or a fresh array received into and written back by install.
 */
// run-tests: own process (it opens and closes a WebGPU device in its hooks: imported beside the other tensor/ files, a device copy was aborted)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import '../../../src/tensor/dispatch.js'; // registers the cpu device
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { type Storage, deviceMemory } from '../../../src/tensor/storage.js';
import {
  allValuesToSend, install, installAll, mappedMemory, mappedOrRefuse, valuesToReceive, valuesToSend,
} from '../../../src/tensor/boundary/host_values.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';
import { far } from '../../helpers/far_device.js';

const cpu = (v: number[]): Storage<Float32Array> => deviceMemory('cpu').fromHost(Float32Array.from(v));

let load: WebGpuLoad;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

describe('host values on the cpu', () => {
  it('hands out the storage\'s own memory: what is received there is installed without a write', () => {
    const host = Float32Array.from([1, 2, 3]);
    const s = deviceMemory('cpu').fromHost(host);
    assert.equal(mappedMemory(s), host);
    assert.equal(valuesToSend(s), host);
    const into = valuesToReceive(s);
    assert.equal(into, host);
    into.set([7, 8, 9]);
    install(s, into);
    assert.deepEqual([...host], [7, 8, 9]);
  });

  it('installs a separate array by writing it (a snapshot put back)', async () => {
    const s = cpu([1, 2]);
    install(s, Float32Array.from([5, 6]));
    assert.deepEqual([...(await s.read())], [5, 6]);
  });

  it('maps storages of any host dtype (int32 indices too), and nothing of a device this process has not registered', () => {
    const ids = Int32Array.of(3, 1);
    assert.equal(mappedMemory(deviceMemory('cpu').fromHost(ids)), ids);
    assert.equal(mappedOrRefuse(deviceMemory('cpu').fromHost(ids), 'ids'), ids);
    // A cpu storage under another device's name: what a storage of an unknown device looks like here.
    const unknown = Object.assign(Object.create(cpu([1, 2])), { device: 'gpu-x' }) as Storage<Float32Array>;
    assert.equal(mappedMemory(unknown), undefined);
    assert.throws(() => mappedOrRefuse(unknown, 'the weights'), /the weights lives on gpu-x, which the host cannot read synchronously/);
  });

  it('read() is an owned copy on the cpu too: changing it leaves the storage alone', async () => {
    const s = cpu([1, 2]);
    const copy = await s.read();
    copy[0] = 42;
    assert.deepEqual([...(await s.read())], [1, 2]);
  });
});

describe('host values on a device the host cannot map', () => {
  it('reads a copy to send and writes nothing back', async () => {
    const s = far([1, 2, 3]);
    assert.equal(mappedMemory(s), undefined);
    const sent = await valuesToSend(s);
    sent[0] = 9;
    assert.deepEqual(s.peek(), [1, 2, 3]);
    assert.deepEqual(s.writes, []);
  });

  it('receives into a fresh zeroed array that reaches the device only at install', () => {
    const [a, b] = [far([1, 2, 3]), far([4, 5])];
    const into = [valuesToReceive(a), valuesToReceive(b)];
    assert.deepEqual(into.map((v) => [...v]), [[0, 0, 0], [0, 0]]);
    into[0].set([7, 8, 9]);
    assert.deepEqual(a.peek(), [1, 2, 3]);
    installAll([a, b], into);
    assert.deepEqual([a.peek(), b.peek()], [[7, 8, 9], [0, 0]]);
  });

  it('webgpu: sends a copy, installs by writing', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const s = deviceMemory('webgpu').fromHost(Float32Array.from([1, 2, 3])) as Storage<Float32Array>;
    const [sent] = await allValuesToSend([s]);
    assert.deepEqual([...sent], [1, 2, 3]);
    const into = valuesToReceive(s);
    into.set([4, 5, 6]);
    assert.deepEqual([...(await s.read())], [1, 2, 3], 'nothing reaches the device before install');
    install(s, into);
    assert.deepEqual([...(await s.read())], [4, 5, 6]);
  });
});

describe('mappedOrRefuse', () => {
  it('hands out the cpu storage\'s own memory, and refuses a device the host cannot map, naming what and where', () => {
    const host = Float32Array.from([1, 2]);
    assert.equal(mappedOrRefuse(deviceMemory('cpu').fromHost(host) as Storage<Float32Array>, 'momentum'), host);
    assert.throws(() => mappedOrRefuse(far([1]), 'momentum'), /momentum lives on far, which the host cannot read synchronously: read it with await/);
  });
});
