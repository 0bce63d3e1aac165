/** The storage handle (src/tensor/storage.ts) on the cpu device (src/tensor/backends/cpu/storage.ts). */
// run-tests: own process (it asserts which devices are registered: other files register more)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import '../../src/tensor/dispatch.js'; // registers the cpu device
import { CPU, deviceMemory, hostDType } from '../../src/tensor/storage.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { FAR, type FarStorage } from '../helpers/far_device.js';

describe('cpu storage', () => {
  it('allocates zeroed storages of the dtype asked, sized in elements and bytes', () => {
    const s = deviceMemory(CPU).alloc('float64', 5);
    assert.equal(s.device, 'cpu');
    assert.equal(s.dtype, 'float64');
    assert.equal(s.size, 5);
    assert.equal(s.byteLength, 40);
    assert.deepEqual(Array.from(s.readSync()), [0, 0, 0, 0, 0]);
    assert.ok(s.readSync() instanceof Float64Array);
  });

  it('readSync is a zero-copy view on the cpu (documented contract); read() resolves to the same values', async () => {
    const host = Float32Array.from([1, 2, 3]);
    const s = deviceMemory(CPU).fromHost(host);
    assert.equal(s.readSync(), host);
    s.readSync()[1] = 7;
    assert.equal(host[1], 7);
    assert.deepEqual(Array.from(await s.read()), [1, 7, 3]);
  });

  it('write copies at an offset and refuses values that do not fit, naming the sizes', () => {
    const s = deviceMemory(CPU).alloc('float32', 4);
    s.write([5, 6], 2);
    assert.deepEqual(Array.from(s.readSync()), [0, 0, 5, 6]);
    assert.throws(() => s.write([1, 2, 3], 2), /3 values at offset 2 do not fit 4 elements/);
    s.zero();
    assert.deepEqual(Array.from(s.readSync()), [0, 0, 0, 0]);
  });

  it('a view shares memory with its parent and is bounds-checked', () => {
    const s = deviceMemory(CPU).fromHost(Float32Array.from([0, 1, 2, 3, 4]));
    const v = s.view(1, 3);
    assert.equal(v.size, 3);
    v.write([9], 1);
    assert.equal(s.readSync()[2], 9);
    assert.throws(() => s.view(3, 3), /storage view \[3, 6\) is outside 5 elements/);
  });

  it('int32 is a dtype: an Int32Array on the cpu, adopted from host values and named by hostDType', () => {
    const s = deviceMemory(CPU).alloc('int32', 3);
    assert.equal(s.dtype, 'int32');
    assert.equal(s.byteLength, 12);
    assert.ok(s.readSync() instanceof Int32Array);
    const ids = Int32Array.of(-1, 7, 2 ** 30);
    const adopted = deviceMemory(CPU).fromHost(ids);
    assert.equal(adopted.dtype, 'int32');
    assert.equal(adopted.readSync(), ids, 'no copy');
    assert.equal(hostDType(ids), 'int32');
  });

  it('an unknown device is refused by name', () => {
    assert.throws(() => deviceMemory('webgpu'), /no device "webgpu" is registered \(known: cpu/);
  });
});

describe('Tensor on a storage', () => {
  it('has no host array of its own: values come through the handle, and bind checks size and dtype', () => {
    const t = Tensor.from([1, 2, 3], [3]);
    assert.equal('data' in t, false);
    assert.deepEqual(Array.from(t.values()), [1, 2, 3]);
    assert.equal(t.values(), t.storage.readSync());
    assert.throws(() => t.bind(deviceMemory(CPU).alloc('float32', 2), null), /cannot bind a float32 storage of 2 elements to a float32 tensor of 3/);
    assert.throws(() => t.bind(deviceMemory(CPU).alloc('float64', 3), null), /cannot bind a float64 storage/);
    const arena = deviceMemory(CPU).fromHost(Float32Array.from([0, 0, 0, 0, 4, 5, 6]));
    t.bind(arena.view(4, 3), null);
    assert.deepEqual(t.toArray(), [4, 5, 6]);
  });
});

describe('Tensor.fromHost on a device', () => {
  it('adopts the array on the cpu and uploads a copy to another device', async () => {
    const host = Float32Array.from([1, 2, 3]);
    assert.equal(Tensor.fromHost(host, [3]).storage.readSync(), host);
    const away = Tensor.fromHost(host, [3], false, FAR);
    assert.equal(away.device, FAR);
    host[0] = 9;
    assert.deepEqual((away.storage as unknown as FarStorage).peek(), [1, 2, 3], 'the device holds its own copy');
    assert.deepEqual([...(await away.read())], [1, 2, 3]);
  });
});
