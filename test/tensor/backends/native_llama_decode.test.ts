/**
 * The native fused decode block's checks (src/native/llama_decode.cc): a malformed block is refused
 * with what is wrong named, before anything is read or written; a stack's plan likewise, naming the
 * layer, and its step equal to the blocks' calls one by one. Its arithmetic is held against the
 * ops in test/nn/layers/llama_fused_decode.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LlamaDecodeBlock, LlamaDecodeWeights } from '../../../src/tensor/backend.js';
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

describe('a stack of blocks in one call', { skip }, () => {
  const native = (): NonNullable<typeof loaded.backend> => loaded.backend!;
  const shapeOf = (b: LlamaDecodeBlock<DeviceBuffer>) => ({ width: b.width, heads: b.heads, kvHeads: b.kvHeads, headDim: b.headDim, intermediate: b.intermediate, eps: b.eps, scale: b.scale });
  const weightsOf = (b: LlamaDecodeBlock<DeviceBuffer>): LlamaDecodeWeights<DeviceBuffer> =>
    ({ inNorm: b.inNorm, postNorm: b.postNorm, qNorm: b.qNorm, kNorm: b.kNorm, formats: b.formats, weights: b.weights, biases: b.biases });
  /** Three blocks of block()'s shape, each its own weights' values, and their own caches. */
  function blocks(): LlamaDecodeBlock<DeviceBuffer>[] {
    return [0.5, -0.25, 0.75].map((v) => {
      const b = block();
      const q8 = (rows: number, cols: number): DeviceBuffer => buf(quantizeRows('q8_0', Float32Array.from({ length: rows * cols }, (_, i) => v * Math.sin(i)), cols));
      return { ...b, weights: [q8(32, 32), q8(16, 32), q8(16, 32), q8(32, 32), q8(64, 32), q8(64, 32), q8(32, 64)] };
    });
  }

  test('its step gives the blocks\' outputs and caches, called one by one, bit for bit', () => {
    const [chain, all] = [blocks(), blocks()];
    let h = chain[0].x as unknown as Float32Array;
    for (const b of chain) {
      const out = new Float32Array(32);
      native().llamaDecodeLayer!({ ...b, x: buf(h), out: buf(out) });
      h = out;
    }
    const plan = native().llamaDecodePlan!(shapeOf(all[0]), all.map(weightsOf));
    const out = new Float32Array(32);
    native().llamaDecodeStack!(plan, { positions: 3, capacity: 4, kvBf16: false, x: all[0].x, out: buf(out), cos: all[0].cos, sin: all[0].sin,
      kCaches: all.map((b) => b.kCache), vCaches: all.map((b) => b.vCache) });
    assert.deepEqual([...out], [...h]);
    all.forEach((b, l) => {
      assert.deepEqual([...(b.kCache as unknown as Float32Array)], [...(chain[l].kCache as unknown as Float32Array)], `layer ${l}'s keys`);
      assert.deepEqual([...(b.vCache as unknown as Float32Array)], [...(chain[l].vCache as unknown as Float32Array)], `layer ${l}'s values`);
    });
    assert.ok(out.some((v) => v !== 0));
  });

  test('a malformed block of the plan is refused naming its layer; a step\'s caches are checked', () => {
    const all = blocks();
    const weights = [...all[2].weights];
    weights[3] = buf(quantizeRows('q8_0', new Float32Array(8 * 32), 32));
    assert.throws(() => native().llamaDecodePlan!(shapeOf(all[0]), [weightsOf(all[0]), weightsOf(all[1]), { ...weightsOf(all[2]), weights }]),
      /layer 2\): o_proj has 272 bytes, too few for \[32, 32\] in q8_0/);
    const plan = native().llamaDecodePlan!(shapeOf(all[0]), all.map(weightsOf));
    const step = { positions: 3, capacity: 4, kvBf16: false, x: all[0].x, out: buf(new Float32Array(32)), cos: all[0].cos, sin: all[0].sin,
      kCaches: all.map((b) => b.kCache), vCaches: all.map((b) => b.vCache) };
    assert.throws(() => native().llamaDecodeStack!(plan, { ...step, kCaches: step.kCaches.slice(0, 2) }), /kCaches: expected an array of at least 3 elements/);
    assert.throws(() => native().llamaDecodeStack!(plan, { ...step, vCaches: [step.vCaches[0], buf(new Float32Array(16)), step.vCaches[2]] }), /vCache/);
    assert.throws(() => native().llamaDecodeStack!(plan, { ...step, positions: 5 }), /position 4 is outside the cache's 4 positions/);
  });
});
