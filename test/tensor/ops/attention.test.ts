import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import {
  Tensor, add, affine, backward, matmul, mul, scaledDotProductAttention, softmax, transpose, type AttentionOptions,
} from '../../../src/tensor/index.js';
import { backend } from '../../../src/tensor/dispatch.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, onDevice, seedFor, valuesOf } from '../../helpers/on_device.js';
import { Rng, randn } from '../../helpers/tensors.js';

/** The unfused definition from existing ops: softmax(scale q kᵀ + mask) v, mask as -1e9 additive. */
function reference(q: Tensor, k: Tensor, v: Tensor, causal: boolean, scale: number): Tensor {
  const tq = q.shape[q.ndim - 2], tk = k.shape[k.ndim - 2];
  let s = affine(matmul(q, transpose(k)), scale);
  if (causal) {
    const m = new Float64Array(tq * tk);
    for (let i = 0; i < tq; i++) for (let j = i + 1; j < tk; j++) m[i * tk + j] = -1e9;
    s = add(s, Tensor.from(m, [tq, tk], q.dtype, q.device));
  }
  return matmul(softmax(s), v);
}

/** `big`: too many entries for a numerical gradcheck; checked against the unfused definition only. */
const CASES: { name: string; q: number[]; k: number[]; v: number[]; opts: AttentionOptions; big?: boolean }[] = [
  { name: 'causal [2, 2, 5, 3]', q: [2, 2, 5, 3], k: [2, 2, 5, 3], v: [2, 2, 5, 3], opts: { causal: true } },
  { name: 'full attention, Tq != Tk, Dv != D', q: [1, 2, 3, 4], k: [1, 2, 6, 4], v: [1, 2, 6, 2], opts: {} },
  { name: 'causal, Tq < Tk, custom scale, 3-d', q: [3, 2, 4], k: [3, 5, 4], v: [3, 5, 3], opts: { causal: true, scale: 0.7 } },
  // Past 128 query rows the native kernel multiplies per block of rows over the keys each may see.
  { name: 'causal over three query blocks, the last partial [1, 2, 300, 8]', q: [1, 2, 300, 8], k: [1, 2, 300, 8], v: [1, 2, 300, 5], opts: { causal: true }, big: true },
  { name: 'causal over two query blocks, Tq < Tk', q: [1, 1, 200, 4], k: [1, 1, 260, 4], v: [1, 1, 260, 3], opts: { causal: true }, big: true },
];

describe('scaledDotProductAttention', () => {
  for (const c of CASES) {
    it(`matches the unfused definition: ${c.name}`, async (t) => {
      // The row blocks are the native kernel's; on a software Vulkan these sizes cost seconds.
      if (c.big && backend().name === 'webgpu') return t.skip('query blocks are a native-kernel path');
      const r = new Rng(c.q.length + c.k[c.k.length - 2]);
      const ins = [randn(c.q, r), randn(c.k, r), randn(c.v, r)];
      const fused = ins.map((t) => onDevice(t, true));
      const plain = ins.map((t) => onDevice(t, true));
      const y = scaledDotProductAttention(fused[0], fused[1], fused[2], c.opts);
      const scale = c.opts.scale ?? 1 / Math.sqrt(c.q[c.q.length - 1]);
      const yr = reference(plain[0], plain[1], plain[2], c.opts.causal ?? false, scale);
      assert.deepEqual([...y.shape], [...yr.shape]);
      assertValues(await valuesOf(y), await valuesOf(yr), { rtol: 1e-12, atol: 1e-12, msg: 'forward' });
      const R = randn(y.shape, new Rng(5)).toArray();
      backward(y, seedFor(y, R));
      backward(yr, seedFor(yr, R));
      for (let i = 0; i < 3; i++) assertValues(await gradOf(fused[i]), await gradOf(plain[i]), { rtol: 1e-10, atol: 1e-12, msg: `gradient of input ${i}` });
    });
    if (!c.big) it(`gradcheck ${c.name}`, async () => {
      const r = new Rng(7);
      await gradcheckOnBackend((q, k, v) => scaledDotProductAttention(q, k, v, c.opts), [randn(c.q, r), randn(c.k, r), randn(c.v, r)], { name: c.name });
    });
  }

  it('gradcheck with attention dropout (a fixed seed drops the same entries every call)', async () => {
    const r = new Rng(11);
    const opts = (): AttentionOptions => ({ causal: true, dropout: { p: 0.3, rng: new Rng(42) } });
    await gradcheckOnBackend((q, k, v) => scaledDotProductAttention(q, k, v, opts()), [randn([2, 4, 3], r), randn([2, 4, 3], r), randn([2, 4, 3], r)], { name: 'dropout' });
  });

  it('dropout scales the kept probabilities by 1/(1-p): p = 0 equals no dropout', async () => {
    const r = new Rng(3);
    const [q, k, v] = [randn([1, 4, 2], r), randn([1, 4, 2], r), randn([1, 4, 2], r)].map((t) => onDevice(t));
    const a = scaledDotProductAttention(q, k, v, { causal: true });
    const b = scaledDotProductAttention(q, k, v, { causal: true, dropout: { p: 0, rng: new Rng(1) } });
    assert.deepEqual(await valuesOf(a), await valuesOf(b));
    assert.throws(() => scaledDotProductAttention(q, k, v, { dropout: { p: 1, rng: new Rng(1) } }), /dropout p must be in \[0, 1\)/);
  });

  it('a causal first query attends only to the first key: its output is v[0]', async () => {
    const r = new Rng(9);
    const v = randn([1, 1, 3, 2], r);
    const y = scaledDotProductAttention(onDevice(randn([1, 1, 3, 2], r)), onDevice(randn([1, 1, 3, 2], r)), onDevice(v), { causal: true });
    assertValues((await valuesOf(y)).slice(0, 2), Array.from(v.values().subarray(0, 2)), {});
  });

  it('frozen inputs receive no gradient', async () => {
    const r = new Rng(4);
    const q = onDevice(randn([1, 3, 2], r)), k = onDevice(randn([1, 3, 2], r)), v = onDevice(randn([1, 3, 2], r));
    v.requiresGrad = true;
    const y = mul(scaledDotProductAttention(q, k, v), 1);
    backward(y, seedFor(y, new Array(6).fill(1)));
    assert.equal(q.grad, null);
    assert.equal(k.grad, null);
    assert.ok(v.grad);
  });

  it('shape errors name the op and the shapes', async () => {
    const r = new Rng(1);
    const rn = (shape: number[]): Tensor => onDevice(randn(shape, r));
    assert.throws(() => scaledDotProductAttention(rn([2, 3, 4]), rn([2, 3, 5]), rn([2, 3, 4])), /scaledDotProductAttention.*\[2, 3, 5\]/);
    assert.throws(() => scaledDotProductAttention(rn([2, 3, 4]), rn([1, 3, 4]), rn([1, 3, 4])), /leading/);
    assert.throws(() => scaledDotProductAttention(rn([2, 3, 4]), rn([2, 3, 4]), rn([2, 4, 4])), /scaledDotProductAttention/);
  });
});
