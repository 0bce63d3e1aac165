/**
 * A quantized weight on the cpu device (src/tensor/backends/cpu/storage.ts): its storage is its
 * blocks' bytes, `size` counts weights, and every offset (view, write) must sit on a block's edge.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quantBytes, quantizeRows } from '../../../../src/tensor/quant/formats.js';
import { CPU, deviceMemory, hostDType } from '../../../../src/tensor/storage.js';
import '../../../../src/tensor/backends/cpu/storage.js';

const memory = deviceMemory(CPU);

describe('cpu storage of a quantized format', () => {
  it('allocates whole blocks: size in weights, byteLength in bytes', () => {
    const s = memory.alloc('q4_0', 64);
    assert.equal(s.dtype, 'q4_0');
    assert.equal(s.size, 64);
    assert.equal(s.byteLength, 36);
    const k = memory.alloc('q4_k', 512);
    assert.equal(k.byteLength, quantBytes('q4_k', 2, 256));
    assert.throws(() => memory.alloc('q8_0', 40), /40 weights are not whole q8_0 blocks \(32 weights each\)/);
  });

  it('adopts bytes named by their format, and refuses bytes without one or a ragged block', () => {
    const bytes = quantizeRows('q8_0', Float32Array.from({ length: 64 }, (_, i) => i / 10), 64);
    const s = memory.fromHost(bytes, 'q8_0');
    assert.equal(s.size, 64);
    assert.equal(memory.hostMemory?.(s), bytes, 'the cpu adopts the array itself');
    assert.throws(() => hostDType(bytes), /quantized weight's blocks: name the format/);
    assert.throws(() => memory.fromHost(bytes.subarray(0, 33), 'q8_0'), /33 bytes are not whole q8_0 blocks \(34 bytes each\)/);
    assert.throws(() => memory.fromHost(new Float32Array(32), 'q8_0'), /a cpu storage of q8_0 cannot hold a Float32Array/);
    assert.throws(() => memory.fromHost(new Uint8Array(4), 'float32'), /a cpu storage of float32 cannot hold a Uint8Array/);
  });

  it('views and writes only on block edges, counting weights', async () => {
    const values = Float32Array.from({ length: 96 }, (_, i) => Math.sin(i));
    const bytes = quantizeRows('q4_1', values, 96);
    const s = memory.fromHost(bytes, 'q4_1');
    const middle = s.view(32, 32);
    assert.equal(middle.dtype, 'q4_1');
    assert.equal(middle.size, 32);
    assert.deepEqual(await middle.read(), bytes.slice(20, 40));
    assert.throws(() => s.view(16, 32), /storage view at 16: not on a q4_1 block's edge \(32 weights\)/);
    assert.throws(() => s.view(64, 64), /outside 96 elements/);
    const before = s.version!;
    s.write(bytes.subarray(0, 20), 64);
    assert.deepEqual((await s.read()).subarray(40, 60), bytes.slice(0, 20));
    assert.equal(s.version, before + 1);
    assert.throws(() => s.write(bytes.subarray(0, 20), 8), /storage write at 8: not on a q4_1 block's edge/);
  });
});
