import { deviceMemory, type Storage } from '../../../src/tensor/storage.js';
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, backward, batchNorm, batchNormRelu, layerNorm, relu, type BatchNormState } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, onDevice, seedFor, storage, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, leaf, randn, uniform } from '../../helpers/tensors.js';

/** Running statistics: zero mean and unit variance, or drawn from r. */
function runningStats(C: number, r?: Rng): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(C);
  const variance = new Float64Array(C).fill(1);
  if (r) for (let c = 0; c < C; c++) {
    mean[c] = r.normal() * 0.5;
    variance[c] = 0.5 + r.uniform();
  }
  return { mean, variance };
}

/** Batch-norm state on the device under test. */
function state(C: number, training: boolean, r?: Rng): BatchNormState {
  const { mean, variance } = runningStats(C, r);
  return { runningMean: storage(mean), runningVar: storage(variance), momentum: 0.1, eps: 1e-5, training };
}

/**
 * Batch-norm state for a gradcheck, whose op runs on float64 host inputs and then on float32 copies
 * on the device under test: the running statistics beside the input, one pair per (device, dtype).
 */
function stateBeside(C: number, training: boolean, r?: Rng): (x: Tensor) => BatchNormState {
  const { mean, variance } = runningStats(C, r);
  const made = new Map<string, BatchNormState>();
  return (x) => {
    const key = `${x.device} ${x.dtype}`;
    const copy = (v: Float64Array): Storage => deviceMemory(x.device).fromHost(x.dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v));
    if (!made.has(key)) made.set(key, { runningMean: copy(mean), runningVar: copy(variance), momentum: 0.1, eps: 1e-5, training });
    return made.get(key)!;
  };
}

describe('batchNorm', () => {
  for (const shape of [[4, 3], [2, 3, 2, 2], [3, 2, 4]]) {
    const C = shape[1];
    it(`gradcheck training mode ${JSON.stringify(shape)}`, async () => {
      const r = new Rng(shape.length);
      const st = stateBeside(C, true);
      await gradcheckOnBackend((x, g, b) => batchNorm(x, g, b, st(x)), [randn(shape, r, 'float64', 2), uniform([C], r, 0.5, 1.5), randn([C], r)], { name: 'batchNorm train' });
    });
    it(`gradcheck eval mode ${JSON.stringify(shape)}`, async () => {
      const r = new Rng(shape.length + 10);
      const st = stateBeside(C, false, r);
      await gradcheckOnBackend((x, g, b) => batchNorm(x, g, b, st(x)), [randn(shape, r), uniform([C], r, 0.5, 1.5), randn([C], r)], { name: 'batchNorm eval' });
    });
  }
  it('batchNormRelu: gradcheck in training mode; equals relu(batchNorm) in both modes', async () => {
    const r = new Rng(21);
    await gradcheckOnBackend((x, g, b) => batchNormRelu(x, g, b, stateBeside(3, true)(x)), [randn([2, 3, 2, 2], r, 'float64', 2), uniform([3], r, 0.5, 1.5), randn([3], r)], { name: 'batchNormRelu train' });
    for (const training of [true, false]) {
      const x = onDevice(randn([4, 3, 5], r, 'float64', 2));
      const [g, b] = [onDevice(uniform([3], r, 0.5, 1.5)), onDevice(randn([3], r))];
      const fused = batchNormRelu(x, g, b, state(3, training));
      const plain = relu(batchNorm(x, g, b, state(3, training)));
      assertValues(await valuesOf(fused), await valuesOf(plain), {});
    }
  });
  it('gradcheck with frozen affine parameters, and with a frozen input', async () => {
    const r = new Rng(3);
    const mk = (): Tensor[] => [randn([3, 2, 2], r), uniform([2], r, 0.5, 1.5), randn([2], r)];
    const st = stateBeside(2, true);
    await gradcheckOnBackend((x, g, b) => batchNorm(x, g, b, st(x)), mk(), { name: 'batchNorm x only', wrt: [0] });
    await gradcheckOnBackend((x, g, b) => batchNorm(x, g, b, st(x)), mk(), { name: 'batchNorm gamma/beta only', wrt: [1, 2] });
    const ev = stateBeside(2, false, r);
    await gradcheckOnBackend((x, g, b) => batchNorm(x, g, b, ev(x)), mk(), { name: 'batchNorm eval gamma/beta only', wrt: [1, 2] });
  });

  it('training forward: per-channel zero mean, unit variance; running stats updated (unbiased var)', async () => {
    // channel 0 over (N, HW): [1, 2, 3, 4, 5, 6, 7, 8]; channel 1: 10x
    const xs = [1, 2, 3, 4, 10, 20, 30, 40, 5, 6, 7, 8, 50, 60, 70, 80];
    const x = tensor(xs, [2, 2, 2, 2]);
    const st = state(2, true);
    const y = batchNorm(x, tensor([1, 1], [2]), tensor([0, 0], [2]), st);
    const yv = await valuesOf(y);
    const ch = (c: number): number[] => [0, 1].flatMap((n) => yv.slice((n * 2 + c) * 4, (n * 2 + c) * 4 + 4));
    for (const c of [0, 1]) {
      const v = ch(c);
      const m = v.reduce((a, b) => a + b) / 8;
      const varB = v.reduce((a, b) => a + (b - m) ** 2, 0) / 8;
      assertValues([m], [0], { atol: 1e-12 });
      assertValues([varB], [1], { rtol: 1e-4 }); // eps = 1e-5 against variances of 5.25 and 525
    }
    // batch mean 4.5 / 45; unbiased variance 6 / 600
    assertValues(await valuesOf(st.runningMean), [0.45, 4.5], { rtol: 1e-14 });
    assertValues(await valuesOf(st.runningVar), [0.9 + 0.6, 0.9 + 60], { rtol: 1e-14 });
    // gamma and beta scale and shift
    const z = batchNorm(x, tensor([2, 3], [2]), tensor([1, -1], [2]), state(2, true));
    assertValues(await valuesOf(z), yv.map((v, i) => (Math.floor(i / 4) % 2 === 0 ? 2 * v + 1 : 3 * v - 1)), { rtol: 1e-14, atol: 1e-14 });
  });
  it('eval forward uses the running statistics and leaves them unchanged', async () => {
    const st: BatchNormState = { runningMean: storage([1, -2]), runningVar: storage([4, 0.25]), momentum: 0.1, eps: 0, training: false };
    const x = tensor([3, 0, 5, -1], [2, 2]);
    const y = batchNorm(x, tensor([1, 2], [2]), tensor([0, 1], [2]), st);
    assertValues(await valuesOf(y), [(3 - 1) / 2, 2 * (0 + 2) / 0.5 + 1, (5 - 1) / 2, 2 * (-1 + 2) / 0.5 + 1]);
    assertValues(await valuesOf(st.runningMean), [1, -2]);
    assertValues(await valuesOf(st.runningVar), [4, 0.25]);
  });
  it('training backward: the gradient of a plain sum through batch-norm is zero for x, m for beta', async () => {
    const x = leaf(onDevice(randn([4, 3], new Rng(1))));
    const g = leaf(tensor([1, 2, 3], [3]));
    const b = leaf(zeros([3], 'float64'));
    const y = batchNorm(x, g, b, state(3, true));
    backward(y, seedFor(y, new Array(12).fill(1)));
    assertValues(await gradOf(x), new Array(12).fill(0), { atol: 1e-12 });
    assertValues(await gradOf(b), [4, 4, 4]);
    assertValues(await gradOf(g), [0, 0, 0], { atol: 1e-12 });
  });
  it('shape errors name the op and the shapes', async () => {
    const st = state(3, true);
    assert.throws(
      () => batchNorm(zeros([4, 3], 'float64'), zeros([2], 'float64'), zeros([3], 'float64'), st),
      /^ShapeError: batchNorm: expected x \[N, C, \.\.\.\] with gamma and beta \[C\] \(shapes \[4, 3\], \[2\], \[3\]\)/,
    );
    assert.throws(() => batchNorm(zeros([3], 'float64'), zeros([3], 'float64'), zeros([3], 'float64'), st), /batchNorm: .*\(shapes \[3\], \[3\], \[3\]\)/);
  });
});

describe('layerNorm', () => {
  for (const shape of [[3, 5], [2, 2, 4], [6]]) {
    it(`gradcheck ${JSON.stringify(shape)}`, async () => {
      const r = new Rng(shape.length);
      const F = shape[shape.length - 1];
      await gradcheckOnBackend((x, g, b) => layerNorm(x, g, b), [randn(shape, r, 'float64', 2), uniform([F], r, 0.5, 1.5), randn([F], r)], { name: 'layerNorm' });
    });
  }
  it('gradcheck with frozen affine parameters, with a frozen input, and a larger eps', async () => {
    const r = new Rng(4);
    const mk = (): Tensor[] => [randn([3, 4], r), uniform([4], r, 0.5, 1.5), randn([4], r)];
    await gradcheckOnBackend((x, g, b) => layerNorm(x, g, b), mk(), { name: 'layerNorm x only', wrt: [0] });
    await gradcheckOnBackend((x, g, b) => layerNorm(x, g, b), mk(), { name: 'layerNorm gamma/beta only', wrt: [1, 2] });
    await gradcheckOnBackend((x, g, b) => layerNorm(x, g, b, 0.5), mk(), { name: 'layerNorm eps 0.5' });
  });
  it('forward: rows normalised to zero mean and unit (biased) variance, then scaled and shifted', async () => {
    const x = tensor([1, 2, 3, 4, -10, 0, 10, 20], [2, 4]);
    const y = layerNorm(x, tensor([1, 1, 1, 1], [4]), zeros([4], 'float64'), 0);
    const yv = await valuesOf(y);
    // row 0: mean 2.5, var 1.25
    const s = Math.sqrt(1.25);
    assertValues(yv.slice(0, 4), [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], { rtol: 1e-14 });
    const row1 = yv.slice(4);
    assertValues([row1.reduce((a, b) => a + b) / 4], [0], { atol: 1e-14 });
    assertValues([row1.reduce((a, b) => a + b * b, 0) / 4], [1], { rtol: 1e-14 });
    const z = layerNorm(x, tensor([2, 2, 2, 2], [4]), tensor([1, 1, 1, 1], [4]), 0);
    assertValues(await valuesOf(z), yv.map((v) => 2 * v + 1), { rtol: 1e-14 });
  });
  it('shape errors name the op and the shapes', async () => {
    assert.throws(
      () => layerNorm(zeros([2, 4]), zeros([3]), zeros([4])),
      /^ShapeError: layerNorm: gamma and beta must match the last axis \(shapes \[2, 4\], \[3\], \[4\]\)/,
    );
    assert.throws(() => layerNorm(zeros([2, 4]), zeros([4]), zeros([2])), /layerNorm: .*\(shapes \[2, 4\], \[4\], \[2\]\)/);
  });
});
