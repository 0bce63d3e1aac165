/**
 * The native fused decode block's checks (src/native/llama_decode.cc): a malformed block is refused
 * with what is wrong named, before anything is read or written. Its arithmetic is held against the
 * ops in test/nn/layers/llama_fused_decode.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LlamaDecodeBlock } from '../../../src/tensor/backend.js';
import { loadNativeBackend } from '../../../src/tensor/backends/native.js';
import { quantizeRows } from '../../../src/tensor/quant/formats.js';
import type { DeviceBuffer } from '../../../src/tensor/storage.js';

const loaded = loadNativeBackend();
const skip = loaded.backend ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

const buf = (a: ArrayBufferView | null): DeviceBuffer => a as unknown as DeviceBuffer;

/** A well-formed block: width 32, 2 heads of 16 over 1 kv head, inner 64, Q8_0 weights, position 2 of a cache of 4. */
function block(): LlamaDecodeBlock<DeviceBuffer> {
  const q8 = (rows: number, cols: number): DeviceBuffer => buf(quantizeRows('q8_0', new Float32Array(rows * cols).fill(0.5), cols));
  const f = (n: number, v = 1): DeviceBuffer => buf(new Float32Array(n).fill(v));
  return {
    width: 32, heads: 2, kvHeads: 1, headDim: 16, intermediate: 64, positions: 3, capacity: 4, eps: 1e-6, scale: 0.25,
    x: f(32, 0.1), out: f(32, 0), inNorm: f(32), postNorm: f(32), qNorm: null, kNorm: null,
    formats: ['q8_0', 'q8_0', 'q8_0', 'q8_0', 'q8_0', 'q8_0', 'q8_0'],
    weights: [q8(32, 32), q8(16, 32), q8(16, 32), q8(32, 32), q8(64, 32), q8(64, 32), q8(32, 64)],
    biases: [null, null, null], cos: f(8), sin: f(8, 0), kCache: f(64, 0), vCache: f(64, 0), kvBf16: false,
  };
}

/** The same block as a bf16 step gives it: bf16 weights (0.5 is exact in bf16), a bf16 cache. */
function bf16Block(): LlamaDecodeBlock<DeviceBuffer> {
  const half = (n: number): DeviceBuffer => buf(new Uint16Array(n).fill(0x3f00));
  return {
    ...block(), formats: new Array(7).fill('bfloat16'),
    weights: [half(32 * 32), half(16 * 32), half(16 * 32), half(32 * 32), half(64 * 32), half(64 * 32), half(32 * 64)],
    kCache: buf(new Uint16Array(64)), vCache: buf(new Uint16Array(64)), kvBf16: true,
  };
}

describe('the native fused decode block refuses a malformed block', { skip }, () => {
  const run = (b: LlamaDecodeBlock<DeviceBuffer>): void => loaded.backend!.llamaDecodeLayer!(b);

  /** Runs b: its output written, position 2 of its cache (of 4) stored and position 3 untouched. */
  function assertRunsAtPosition2(b: LlamaDecodeBlock<DeviceBuffer>): void {
    run(b);
    const out = b.out as unknown as Float32Array, k = b.kCache as unknown as Float32Array | Uint16Array;
    assert.ok(out.every(Number.isFinite) && out.some((v) => v !== 0));
    assert.ok(k.subarray(32, 48).some((v) => v !== 0), 'position 2 stored');
    assert.ok(k.subarray(48, 64).every((v) => v === 0), 'position 3 untouched');
  }

  test('a well-formed block runs and writes its output and the cache\'s position', () => {
    assertRunsAtPosition2(block());
  });

  test('a bf16 step\'s block (bf16 weights and cache) writes its output and the cache\'s position; float32 caches refused', () => {
    const b = bf16Block();
    assertRunsAtPosition2(b);
    assert.throws(() => run({ ...bf16Block(), kCache: buf(new Float32Array(64)), vCache: buf(new Float32Array(64)) }), /kCache/);
    const weights = [...b.weights];
    weights[6] = buf(new Uint16Array(32 * 32));
    assert.throws(() => run({ ...bf16Block(), weights }), /down_proj/);
  });

  test('a weight too short for its rows, named', () => {
    const b = block();
    const weights = [...b.weights];
    weights[1] = buf(quantizeRows('q8_0', new Float32Array(8 * 32), 32));
    assert.throws(() => run({ ...b, weights }), /k_proj has 272 bytes, too few for \[16, 32\] in q8_0/);
  });

  test('a position outside the cache, heads not a multiple of the kv heads, short buffers', () => {
    assert.throws(() => run({ ...block(), positions: 5 }), /position 4 is outside the cache's 4 positions/);
    assert.throws(() => run({ ...block(), heads: 3, kvHeads: 2 }), /3 heads are not a multiple of 2 kv heads/);
    assert.throws(() => run({ ...block(), kCache: buf(new Float32Array(16)) }), /kCache/);
    assert.throws(() => run({ ...block(), biases: [buf(new Float32Array(4)), null, null] }), /bias/);
  });
});
