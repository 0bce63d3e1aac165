/**
 * bf16 compute (docs/PRECISION.md), on every backend. Two checks per op:
 *  - the arithmetic: the bf16 result equals the float64 op over the bf16-rounded operands (and,
 *    for the backward, the bf16-rounded output gradient) within float32 accumulation error: the
 *    kernels round by RNE and accumulate in float32, nothing coarser;
 *  - the tolerance against float32 (what a user sees): the relative L2 error of outputs and
 *    gradients stays under the documented bound, and is above float32 noise (the op did run in bf16).
 * A backend without the bf16 kernels a check needs (webgpu: WGSL has no bf16) skips it by name,
 * once the pair is found on the asserted list of kernels not provided (helpers/provided.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import {
  Tensor, backward, conv2d, linear, matmul, scaledDotProductAttention, withComputePrecision, type Precision,
} from '../../../src/tensor/index.js';
import { bf16Bits } from '../../../src/tensor/backends/js/bf16.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { backend } from '../../../src/tensor/dispatch.js';
import { gradOf, seedFor, testDevice, valuesOf } from '../../helpers/on_device.js';
import { missingKernels } from '../../helpers/provided.js';
import { Rng, randn } from '../../helpers/tensors.js';
import type { TestContext } from 'node:test';
import { bf16Tuning } from '../../../src/tensor/ops/bf16.js';

/** ‖a − b‖₂ / ‖b‖₂ */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** x rounded through bf16 (the rule every backend implements), as a number. */
function roundBf16(x: number): number {
  f32[0] = x;
  u32[0] = bf16Bits(u32[0]) << 16;
  return f32[0];
}

function rounded(t: Tensor, dtype: 'float32' | 'float64' = 'float64', requiresGrad = true): Tensor {
  const out = Tensor.from(Array.from(t.values(), roundBf16), t.shape, dtype);
  out.requiresGrad = requiresGrad;
  return out;
}

function float64(t: Tensor): Tensor {
  const out = Tensor.from(t.values(), t.shape, 'float64');
  out.requiresGrad = true;
  return out;
}

/** A float32 leaf of t's values on the device under test. */
function float32(t: Tensor): Tensor {
  const out = Tensor.from(t.values(), t.shape, 'float32', testDevice());
  out.requiresGrad = true;
  return out;
}

/**
 * Whether the backend under test has the bf16 kernels a check needs; where it has not, the test
 * is skipped naming them (missingKernels throws unless each pair is on the asserted list).
 */
function runsBf16(t: TestContext, kernels: readonly string[]): boolean {
  const b = backend();
  const missing = missingKernels(b, kernels);
  if (missing.length > 0) t.skip(`${b.name} does not provide ${missing.join(', ')} (NOT_PROVIDED, helpers/provided.ts)`);
  return missing.length === 0;
}

/** The kernels a bf16 GEMM op runs (operands rounded, gy rounded in place in blocks). */
const GEMM_BF16 = ['toBf16', 'bf16View', 'gemm@bfloat16'] as const;
/** The kernels a bf16 convolution runs. */
const CONV_BF16 = ['toBf16', 'conv2d@bfloat16', 'conv2dBackward@bfloat16'] as const;

/** The documented bounds (docs/PRECISION.md): bf16 against float32, relative L2 over a tensor. */
export const BF16_TOLERANCE = { forward: 6e-3, gradient: 8e-3 };
/** bf16 against the float64 op on the rounded operands: float32 summation error only. */
const ARITHMETIC_TOLERANCE = 2e-6;
/** Below this a "bf16" result is float32's: the op did not round. */
const ROUNDED_AT_LEAST = 3e-4;

type Op = (...xs: Tensor[]) => Tensor;
const restoreAfterBackward: (() => void)[] = [];

/** Runs an op with roundInPlace's first block set to `first` until its backward has run (see run()). */
function inPlaceBlocksOf(first: number, op: () => Tensor): Tensor {
  const before = bf16Tuning.inPlaceFirstBlock;
  bf16Tuning.inPlaceFirstBlock = first;
  restoreAfterBackward.push(() => { bf16Tuning.inPlaceFirstBlock = before; });
  return op();
}

interface Case {
  name: string;
  shapes: number[][];
  op: Op;
  /** The float64 reference on rounded operands applies (false: attention's inner roundings). */
  exact: boolean;
  /** A bias (input 2) whose gradient sums the float32 gy (linear) rather than the bf16 one (conv2d). */
  float32BiasGradient?: boolean;
  /** The bf16 kernels the op runs (GEMM_BF16 unless stated). */
  kernels?: readonly string[];
}

const CASES: Case[] = [
  { name: 'linear with bias [3, 5, 24] · [16, 24]ᵀ', shapes: [[3, 5, 24], [16, 24], [16]], op: (x, w, b) => linear(x, w, b), exact: true, float32BiasGradient: true },
  {
    // gy (70 elements) is rounded in place: 3 copied aside, then blocks [3, 6), [6, 12), … [48, 70).
    name: 'linear, gy rounded in place in doubling blocks', shapes: [[7, 12], [10, 12], [10]], exact: true, float32BiasGradient: true,
    op: (x, w, b) => inPlaceBlocksOf(3, () => linear(x, w, b)),
  },
  {
    name: 'matmul batched, gy rounded in place in doubling blocks', shapes: [[2, 3, 6, 5], [2, 3, 5, 4]], exact: true,
    op: (a, b) => inPlaceBlocksOf(5, () => matmul(a, b)),
  },
  { name: 'matmul folded [2, 7, 33] @ [33, 9]', shapes: [[2, 7, 33], [33, 9]], op: (a, b) => matmul(a, b), exact: true },
  { name: 'matmul shared A [6, 20] @ [3, 20, 5]', shapes: [[6, 20], [3, 20, 5]], op: (a, b) => matmul(a, b), exact: true },
  { name: 'matmul batched [2, 3, 6, 17] @ [2, 3, 17, 4]', shapes: [[2, 3, 6, 17], [2, 3, 17, 4]], op: (a, b) => matmul(a, b), exact: true },
  {
    name: 'conv2d 3×3 stride 2 pad 1 with bias', shapes: [[2, 5, 9, 9], [8, 5, 3, 3], [8]],
    op: (x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }), exact: true, kernels: CONV_BF16,
  },
  { name: 'conv2d 1×1, 16 channels', shapes: [[2, 16, 6, 6], [16, 16, 1, 1]], op: (x, w) => conv2d(x, w, null), exact: true, kernels: CONV_BF16 },
  {
    name: 'attention causal [2, 3, 12, 16]', shapes: [[2, 3, 12, 16], [2, 3, 12, 16], [2, 3, 12, 16]],
    op: (q, k, v) => scaledDotProductAttention(q, k, v, { causal: true }), exact: false,
  },
  {
    name: 'attention causal with dropout 0.2 [2, 2, 8, 8]', shapes: [[2, 2, 8, 8], [2, 2, 8, 8], [2, 2, 8, 8]],
    op: (q, k, v) => scaledDotProductAttention(q, k, v, { causal: true, dropout: { p: 0.2, rng: new Rng(9) } }), exact: false,
  },
  {
    name: 'attention full, Tq != Tk [4, 5, 8] [4, 9, 8] [4, 9, 6]', shapes: [[4, 5, 8], [4, 9, 8], [4, 9, 6]],
    op: (q, k, v) => scaledDotProductAttention(q, k, v), exact: false,
  },
  {
    name: 'attention grouped-query causal, 6 heads over 2 [2, 6, 12, 16] [2, 2, 12, 16]', shapes: [[2, 6, 12, 16], [2, 2, 12, 16], [2, 2, 12, 16]],
    op: (q, k, v) => scaledDotProductAttention(q, k, v, { causal: true }), exact: false,
  },
  {
    name: 'attention grouped-query with dropout 0.2, one kv head, Tq != Tk, Dv != D', shapes: [[2, 4, 5, 8], [2, 1, 9, 8], [2, 1, 9, 6]],
    op: (q, k, v) => scaledDotProductAttention(q, k, v, { dropout: { p: 0.2, rng: new Rng(9) } }), exact: false,
  },
];

/** Output and input gradients of op at `precision`, from float32 copies of the inputs on the device under test. */
async function run(c: Case, inputs: Tensor[], gy: Tensor, precision: Precision): Promise<{ y: Float32Array; grads: Float32Array[] }> {
  const { y, xs } = withComputePrecision(precision, () => {
    const xs = inputs.map(float32);
    const y = c.op(...xs);
    backward(y, seedFor(y, gy.values()));
    for (const f of restoreAfterBackward.splice(0).reverse()) f();
    return { y, xs };
  });
  return { y: Float32Array.from(await y.read()), grads: await Promise.all(xs.map(async (x) => Float32Array.from(await gradOf(x)))) };
}

describe('bf16 compute', () => {
  it('rounds float32 to bf16 by round-to-nearest-even (NaN quiet, denormals to signed zero)', async (t) => {
    if (!runsBf16(t, ['toBf16', 'fromBf16'])) return;
    // The kernels over host arrays: no backend with bf16 kernels runs off the cpu yet.
    const k = hostKernels(backend());
    const cases: [number, number][] = [
      [0x3f800000, 0x3f80], // 1
      [0x3f808000, 0x3f80], // 1 + 2^-8: a tie, to even (down)
      [0x3f818000, 0x3f82], // a tie, to even (up)
      [0x3f808001, 0x3f81], // just above the tie
      [0xbf7fffff, 0xbf80], // -0.99999994 rounds to -1
      [0x7f7fffff, 0x7f80], // float32 max overflows to +inf
      [0x7f800000, 0x7f80], // +inf
      [0x7fa00000, 0x7fe0], // a signalling NaN becomes quiet
      [0x00000001, 0x0000], // denormal: +0
      [0x807fffff, 0x8000], // denormal: -0
      [0x00800000, 0x0080], // the smallest normal stays
    ];
    const x = new Float32Array(new Uint32Array(cases.map((c) => c[0])).buffer);
    const out = new Uint16Array(cases.length);
    k.toBf16(x, out);
    assert.deepEqual([...out].map((v) => v.toString(16)), cases.map((c) => c[1].toString(16)));
    const back = new Float32Array(cases.length);
    k.fromBf16(out, back);
    assert.deepEqual([...new Uint32Array(back.buffer)], [...out].map((v) => (v << 16) >>> 0));
  });

  for (const c of CASES) {
    it(`${c.name}: bf16 arithmetic and tolerance against float32`, async (t) => {
      if (!runsBf16(t, c.kernels ?? GEMM_BF16)) return;
      const rng = new Rng(c.shapes.length * 31 + c.shapes[0][0]);
      const inputs = c.shapes.map((s) => randn(s, rng, 'float32'));
      const yShape = withComputePrecision('fp32', () => c.op(...inputs.map(float32)).shape);
      const gy = randn(yShape, rng, 'float32');
      const low = await run(c, inputs, gy, 'bf16');
      const full = await run(c, inputs, gy, 'fp32');
      const errY = relL2(low.y, full.y);
      if (process.env.BF16_REPORT) console.log(c.name, "fwd", errY.toExponential(2), low.grads.map((g, i) => relL2(g, full.grads[i]).toExponential(2)).join(" "));
      assert.ok(errY < BF16_TOLERANCE.forward, `forward: relative L2 ${errY} against float32`);
      assert.ok(errY > ROUNDED_AT_LEAST, `forward: relative L2 ${errY} against float32 is float32 noise: bf16 did not run`);
      for (let i = 0; i < inputs.length; i++) {
        const err = relL2(low.grads[i], full.grads[i]);
        assert.ok(err < BF16_TOLERANCE.gradient, `gradient of input ${i}: relative L2 ${err} against float32`);
      }
      if (!c.exact) return;
      // The float64 op over the rounded operands, seeded with the rounded output gradient.
      const isBias = (i: number): boolean => i === 2 && c.shapes[2].length === 1;
      const ref = inputs.map((x, i) => (isBias(i) ? float64(x) : rounded(x)));
      const yr = c.op(...ref);
      assert.ok(relL2(low.y, yr.values()) < ARITHMETIC_TOLERANCE, `forward: ${relL2(low.y, yr.values())} from the float64 op on bf16 operands`);
      backward(yr, rounded(gy, 'float64', false).values());
      for (const f of restoreAfterBackward.splice(0).reverse()) f();
      for (let i = 0; i < inputs.length; i++) {
        const g = ref[i].gradValues()!;
        // A bias's gradient is the float32 sum of the (unrounded) gy: compare it with float32's.
        const expected = isBias(i) && c.float32BiasGradient ? full.grads[i] : g;
        const err = relL2(low.grads[i], expected);
        assert.ok(err < ARITHMETIC_TOLERANCE, `gradient of input ${i}: ${err} from the float64 op on bf16 operands`);
      }
    });
  }

  it('the tuning left as it was', async () => {
    assert.equal(bf16Tuning.inPlaceFirstBlock, 1 << 16);
  });

  it('a weight is rounded at each use: a forward sees an edit made after the one before, and a backward reads the weight as it is then (as float32 does)', async (t) => {
    if (!runsBf16(t, GEMM_BF16)) return;
    const rng = new Rng(3);
    const w = randn([4, 8], rng, 'float32');
    w.requiresGrad = true;
    const x = randn([2, 8], rng, 'float32');
    x.requiresGrad = true;
    const gy = new Float32Array(8).fill(1);
    const gradAfterEdit = async (p: Precision): Promise<number[]> => {
      const { x2, y1, y2 } = withComputePrecision(p, () => {
        const w2 = float32(w);
        const x2 = float32(x);
        const y1 = linear(x2, w2, null);
        w2.storage.write([w.values()[0] + 1], 0); // seen by the next forward
        const y2 = linear(x2, w2, null);
        w2.storage.write([w.values()[1] + 1], 1); // seen by the backward of both (each reads the weight when it runs)
        backward(y1, seedFor(y1, gy));
        return { x2, y1, y2 };
      });
      assert.notDeepEqual(await valuesOf(y2), await valuesOf(y1));
      return gradOf(x2);
    };
    const [g16, g32] = [await gradAfterEdit('bf16'), await gradAfterEdit('fp32')];
    assert.ok(relL2(g16, g32) < BF16_TOLERANCE.gradient, `bf16 ${g16} against fp32 ${g32}`);
    assert.ok(Math.abs(g32[1] - g16[1]) < 0.05 && Math.abs(g32[1] - (w.values()[1] + 1 + w.values()[9] + w.values()[17] + w.values()[25])) < 1e-5);
  });
});
