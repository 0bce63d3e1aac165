import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, add, avgPool2d, backward, conv2d, globalAvgPool2d, maxPool2d, maxPool2dRelu, mul, relu, sum, type Conv2dOptions, type Pool2dOptions } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, onDevice, seedFor, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, assertShape, distinct, leaf, randn } from '../../helpers/tensors.js';

const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

/** Direct (7-loop) convolution, the definition. */
function refConv(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions): { data: number[]; shape: number[] } {
  const [N, C, H, W] = x.shape;
  const [O, , KH, KW] = w.shape;
  const [sh, sw] = pair(opts.stride, 1);
  const [ph, pw] = pair(opts.padding, 0);
  const OH = Math.floor((H + 2 * ph - KH) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  const data: number[] = [];
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    let s = b ? b.values()[o] : 0;
    for (let c = 0; c < C; c++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const iy = oy * sh - ph + ky, ix = ox * sw - pw + kx;
      if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += x.values()[((n * C + c) * H + iy) * W + ix] * w.values()[((o * C + c) * KH + ky) * KW + kx];
    }
    data.push(s);
  }
  return { data, shape: [N, O, OH, OW] };
}

/** Direct pooling: max over real cells (padding = -inf) or sum / full window incl. padding. */
function refPool(x: Tensor, opts: Pool2dOptions, kind: 'max' | 'avg'): { data: number[]; shape: number[] } {
  const [N, C, H, W] = x.shape;
  const [KH, KW] = pair(opts.kernel, 1);
  const [sh, sw] = pair(opts.stride ?? opts.kernel, 1);
  const [ph, pw] = pair(opts.padding, 0);
  const OH = Math.floor((H + 2 * ph - KH) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  const data: number[] = [];
  for (let p = 0; p < N * C; p++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    let m = -Infinity, s = 0;
    const y0 = oy * sh - ph, x0 = ox * sw - pw;
    // torch count_include_pad: the window clipped to the padded image
    const area = (Math.min(y0 + KH, H + ph) - y0) * (Math.min(x0 + KW, W + pw) - x0);
    for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const iy = y0 + ky, ix = x0 + kx;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      const v = x.values()[(p * H + iy) * W + ix];
      m = Math.max(m, v);
      s += v;
    }
    data.push(kind === 'max' ? m : s / area);
  }
  return { data, shape: [N, C, OH, OW] };
}

const CONV_CASES: { name: string; x: number[]; w: number[]; bias: boolean; opts: Conv2dOptions }[] = [
  { name: 'stride 1, padding 0, bias', x: [2, 2, 4, 4], w: [3, 2, 3, 3], bias: true, opts: {} },
  { name: 'stride 1, padding 1, no bias', x: [1, 2, 4, 4], w: [2, 2, 3, 3], bias: false, opts: { padding: 1 } },
  { name: 'stride 2, padding 1, bias', x: [2, 1, 5, 5], w: [2, 1, 3, 3], bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'stride 2, padding 0, no bias', x: [1, 2, 5, 4], w: [2, 2, 2, 2], bias: false, opts: { stride: 2 } },
  { name: 'non-square input and kernel, stride [2, 1], padding [1, 0]', x: [2, 2, 5, 4], w: [3, 2, 3, 2], bias: true, opts: { stride: [2, 1], padding: [1, 0] } },
  { name: '1x1 kernel', x: [2, 3, 2, 3], w: [2, 3, 1, 1], bias: true, opts: {} },
];

describe('conv2d', () => {
  for (const c of CONV_CASES) {
    it(`gradcheck ${c.name}`, async () => {
      const r = new Rng(c.x[2] * 10 + c.w[2]);
      const inputs = [randn(c.x, r), randn(c.w, r, 'float64', 0.5)];
      if (c.bias) inputs.push(randn([c.w[0]], r));
      await gradcheckOnBackend((x, w, b) => conv2d(x, w, b ?? null, c.opts), inputs, { name: 'conv2d' });
    });
    it(`forward matches direct convolution: ${c.name}`, async () => {
      const r = new Rng(7);
      const x = randn(c.x, r), w = randn(c.w, r), b = c.bias ? randn([c.w[0]], r) : null;
      const y = conv2d(onDevice(x), onDevice(w), b && onDevice(b), c.opts);
      const ref = refConv(x, w, b, c.opts);
      assertShape(y, ref.shape);
      assertValues(await valuesOf(y), ref.data, { rtol: 1e-12, atol: 1e-12 });
    });
  }
  it('gradcheck with the input frozen (weights only), and weights frozen (input only)', async () => {
    const r = new Rng(11);
    const mk = (): Tensor[] => [randn([1, 2, 4, 3], r), randn([2, 2, 2, 2], r), randn([2], r)];
    await gradcheckOnBackend((x, w, b) => conv2d(x, w, b, { padding: 1 }), mk(), { name: 'conv2d w,b', wrt: [1, 2] });
    await gradcheckOnBackend((x, w, b) => conv2d(x, w, b, { padding: 1 }), mk(), { name: 'conv2d x', wrt: [0] });
    await gradcheckOnBackend((x, w, b) => conv2d(x, w, b, { stride: 2 }), mk(), { name: 'conv2d w', wrt: [1] });
  });
  it('known result: 3x3 ramp with a 2x2 box filter', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    const w = tensor([1, 1, 1, 1], [1, 1, 2, 2]);
    assertValues(await valuesOf(conv2d(x, w, null)), [12, 16, 24, 28]);
    assertValues(await valuesOf(conv2d(x, w, tensor([1], [1]))), [13, 17, 25, 29]);
    const y = conv2d(x, w, null, { stride: 2, padding: 1 });
    assertShape(y, [1, 1, 2, 2]);
    assertValues(await valuesOf(y), [1, 5, 11, 28]);
    // a cross-correlation (no kernel flip), as in torch
    const e = tensor([1, 0, 0, 0], [1, 1, 2, 2]);
    assertValues(await valuesOf(conv2d(x, e, null)), [1, 2, 4, 5]);
  });
  it('known gradients of the box filter', async () => {
    const x = leaf(tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]));
    const w = leaf(tensor([1, 1, 1, 1], [1, 1, 2, 2]));
    const b = leaf(tensor([0], [1]));
    const y = conv2d(x, w, b);
    backward(y, seedFor(y, new Array(4).fill(1)));
    assertValues(await gradOf(x), [1, 2, 1, 2, 4, 2, 1, 2, 1]);
    assertValues(await gradOf(w), [12, 16, 24, 28]);
    assertValues(await gradOf(b), [4]);
  });
  it('shape errors name the op and the shapes', async () => {
    const x = zeros([1, 2, 4, 4]);
    assert.throws(() => conv2d(x, zeros([3, 1, 3, 3]), null), /^ShapeError: conv2d: expected x \[N, C, H, W\] and weight \[outC, C, kH, kW\] \(shapes \[1, 2, 4, 4\], \[3, 1, 3, 3\]\)/);
    assert.throws(() => conv2d(zeros([2, 4, 4]), zeros([3, 2, 3, 3]), null), /conv2d: .*\(shapes \[2, 4, 4\], \[3, 2, 3, 3\]\)/);
    assert.throws(() => conv2d(x, zeros([3, 2, 3, 3]), zeros([2])), /^ShapeError: conv2d: bias must be \[outC\] \(shapes \[1, 2, 4, 4\], \[3, 2, 3, 3\], \[2\]\)/);
    assert.throws(() => conv2d(x, zeros([3, 2, 5, 3]), null), /^ShapeError: conv2d: kernel 5 with padding 0 does not fit input size 4 \(shapes \[1, 2, 4, 4\], \[3, 2, 5, 3\]\)/);
  });
});

const POOL_CASES: { name: string; x: number[]; opts: Pool2dOptions }[] = [
  { name: 'kernel 2 (stride = kernel)', x: [2, 2, 4, 4], opts: { kernel: 2 } },
  { name: 'kernel 3, stride 2, padding 1', x: [1, 2, 5, 5], opts: { kernel: 3, stride: 2, padding: 1 } },
  { name: 'kernel 2, stride 1', x: [1, 1, 4, 3], opts: { kernel: 2, stride: 1 } },
  { name: 'kernel 2, stride 1, padding 1', x: [1, 2, 3, 3], opts: { kernel: 2, stride: 1, padding: 1 } },
  { name: 'non-square kernel [2, 3], stride [1, 2], padding [1, 1]', x: [2, 1, 4, 5], opts: { kernel: [2, 3], stride: [1, 2], padding: [1, 1] } },
  { name: 'kernel 3, stride 2 (overlapping, window cut at the far edge)', x: [1, 1, 6, 6], opts: { kernel: 3, stride: 2 } },
];

describe('maxPool2d / avgPool2d', () => {
  for (const c of POOL_CASES) {
    it(`maxPool2d gradcheck ${c.name}`, async () => {
      await gradcheckOnBackend((x) => maxPool2d(x, c.opts), [distinct(c.x, new Rng(c.x[2]))], { name: 'maxPool2d' });
    });
    it(`avgPool2d gradcheck ${c.name}`, async () => {
      await gradcheckOnBackend((x) => avgPool2d(x, c.opts), [randn(c.x, new Rng(c.x[3]))], { name: 'avgPool2d' });
    });
    it(`forward matches direct pooling: ${c.name}`, async () => {
      const x = randn(c.x, new Rng(5));
      for (const kind of ['max', 'avg'] as const) {
        const y = kind === 'max' ? maxPool2d(onDevice(x), c.opts) : avgPool2d(onDevice(x), c.opts);
        const ref = refPool(x, c.opts, kind);
        assertShape(y, ref.shape, `${kind}: `);
        assertValues(await valuesOf(y), ref.data, { rtol: 1e-14, atol: 1e-15, msg: kind });
      }
    });
  }
  it('maxPool2dRelu is maxPool2d(relu(x)) exactly: values and gradients, float64 and float32, with zeros and ties', async () => {
    for (const c of POOL_CASES) {
      for (const dtype of ['float64', 'float32'] as const) {
        const rng = new Rng(c.x[2] + 7);
        const values = randn(c.x, rng).toArray().map((v, i) => (i % 7 === 0 ? 0 : v));
        const gy = randn(maxPool2d(tensor(values, c.x, dtype), c.opts).shape, rng);
        const a = leaf(tensor(values, c.x, dtype));
        const b = leaf(tensor(values, c.x, dtype));
        const fused = maxPool2dRelu(a, c.opts);
        const plain = maxPool2d(relu(b), c.opts);
        assert.deepEqual(await valuesOf(fused), await valuesOf(plain), `${c.name} ${dtype} values`);
        backward(fused, seedFor(fused, gy.toArray()));
        backward(plain, seedFor(plain, gy.toArray()));
        assert.deepEqual(await gradOf(a), await gradOf(b), `${c.name} ${dtype} gradients`);
      }
    }
  });
  it('a second gradient into the pooled input adds to the first (the first is written whole)', async () => {
    for (const dtype of ['float64', 'float32'] as const) {
      const values = randn([2, 3, 6, 7], new Rng(4)).toArray();
      const gradThrough = async (f: (t: Tensor) => Tensor): Promise<number[]> => {
        const t = leaf(tensor(values, [2, 3, 6, 7], dtype));
        backward(sum(f(t)));
        return gradOf(t);
      };
      // Inside a graph (t = 2·x): both poolings feed t, the first backward to reach it writes t.grad, the second adds.
      const x = leaf(tensor(values, [2, 3, 6, 7], dtype));
      const t = mul(x, 2);
      backward(sum(add(maxPool2d(t, { kernel: 2 }), maxPool2dRelu(t, { kernel: 2 }))));
      const first = await gradThrough((u) => maxPool2d(mul(u, 2), { kernel: 2 }));
      const second = await gradThrough((u) => maxPool2d(relu(mul(u, 2)), { kernel: 2 }));
      assert.deepEqual(await gradOf(x), first.map((v, i) => v + second[i]), dtype);
    }
  });
  it('known values: 4x4 ramp', async () => {
    const x = tensor(Array.from({ length: 16 }, (_, i) => i + 1), [1, 1, 4, 4]);
    assertValues(await valuesOf(maxPool2d(x, { kernel: 2 })), [6, 8, 14, 16]);
    assertValues(await valuesOf(avgPool2d(x, { kernel: 2 })), [3.5, 5.5, 11.5, 13.5]);
    // padding 1, kernel 2, stride 2: the corner window sees one real cell and three zeros of padding
    const a = avgPool2d(x, { kernel: 2, padding: 1 });
    assertShape(a, [1, 1, 3, 3]);
    assertValues(await valuesOf(a), [1 / 4, (2 + 3) / 4, 4 / 4, (5 + 9) / 4, (6 + 7 + 10 + 11) / 4, (8 + 12) / 4, 13 / 4, (14 + 15) / 4, 16 / 4]);
    const m = maxPool2d(tensor(Array.from({ length: 16 }, (_, i) => -(i + 1)), [1, 1, 4, 4]), { kernel: 2, padding: 1 });
    // padding is -inf for max pooling: all-negative inputs still win over it
    assertValues(await valuesOf(m), [-1, -2, -4, -5, -6, -8, -13, -14, -16]);
  });
  it('known gradients: max routes to the argmax, avg spreads evenly', async () => {
    const x = leaf(tensor([1, 9, 2, 3, 4, 5, 6, 7, 8], [1, 1, 3, 3]));
    const y = maxPool2d(x, { kernel: 2, stride: 1 });
    backward(y, seedFor(y, new Array(4).fill(1)));
    // windows: {1,9,3,4}->9, {9,2,4,5}->9, {3,4,6,7}->7, {4,5,7,8}->8
    assertValues(await gradOf(x), [0, 2, 0, 0, 0, 0, 0, 1, 1]);
    const z = leaf(zeros([1, 1, 2, 2], 'float64'));
    const p = avgPool2d(z, { kernel: 2 });
    backward(p, seedFor(p, [1]));
    assertValues(await gradOf(z), [0.25, 0.25, 0.25, 0.25]);
  });
  it('shape errors name the op and the shapes', async () => {
    for (const [name, fn] of [['maxPool2d', maxPool2d], ['avgPool2d', avgPool2d]] as const) {
      assert.throws(() => fn(zeros([2, 4, 4]), { kernel: 2 }), new RegExp(`^ShapeError: ${name}: expected x \\[N, C, H, W\\] \\(shapes \\[2, 4, 4\\]\\)`));
      assert.throws(() => fn(zeros([1, 1, 4, 4]), { kernel: 2, padding: 2 }), new RegExp(`^ShapeError: ${name}: padding must be at most half the kernel \\(shapes \\[1, 1, 4, 4\\]\\)`));
      assert.throws(() => fn(zeros([1, 1, 2, 2]), { kernel: 3 }), new RegExp(`^ShapeError: ${name}: kernel 3 with padding 0 does not fit input size 2 \\(shapes \\[1, 1, 2, 2\\]\\)`));
    }
  });
});

describe('globalAvgPool2d', () => {
  it('is the mean of every channel plane, shaped [N, C]', async () => {
    const x = tensor([1, 2, 3, 4, 10, 20, 30, 40, 0, 0, 0, 8, -1, -1, -1, -1], [2, 2, 2, 2]);
    const y = globalAvgPool2d(x);
    assert.deepEqual([...y.shape], [2, 2]);
    assertValues(await valuesOf(y), [2.5, 25, 2, -1]);
  });
  it('gradcheck', async () => {
    await gradcheckOnBackend((x) => globalAvgPool2d(x), [randn([2, 3, 3, 4], new Rng(6))], { name: 'globalAvgPool2d' });
  });
  it('refuses a non-4-d input', async () => {
    assert.throws(() => globalAvgPool2d(onDevice(randn([2, 3, 4], new Rng(1)))), /globalAvgPool2d/);
  });
});
