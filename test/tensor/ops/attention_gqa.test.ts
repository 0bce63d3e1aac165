/**
 * Grouped-query attention (q [N, H, T, D] against k, v with Hkv heads, H a multiple of Hkv) equals
 * the same attention on k and v whose heads are repeated explicitly, as Hugging Face's repeat_kv
 * does: forward, gradients (gk and gv summed over each group's query heads) and attention dropout.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import {
  Tensor, backward, concat, scaledDotProductAttention, slice, withComputePrecision, type AttentionOptions,
} from '../../../src/tensor/index.js';
import { backend } from '../../../src/tensor/dispatch.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, onDevice, seedFor, testDevice, valuesOf } from '../../helpers/on_device.js';
import { missingKernels } from '../../helpers/provided.js';
import { Rng, assertClose, randn } from '../../helpers/tensors.js';

/** k or v [..., Hkv, T, D] with each head repeated `groups` times in place: [..., Hkv·groups, T, D]. */
function repeatHeads(x: Tensor, groups: number): Tensor {
  const axis = x.ndim - 3;
  const heads: Tensor[] = [];
  for (let h = 0; h < x.shape[axis]; h++) for (let r = 0; r < groups; r++) heads.push(slice(x, axis, h, h + 1));
  return concat(heads, axis);
}

/** `big`: too many entries for a numerical gradcheck; checked against repeated heads only. */
interface Case { name: string; q: number[]; k: number[]; v: number[]; opts: () => AttentionOptions; big?: boolean }

const CASES: Case[] = [
  { name: 'causal, 6 heads over 2 kv heads [2, 6, 5, 4]', q: [2, 6, 5, 4], k: [2, 2, 5, 4], v: [2, 2, 5, 3], opts: () => ({ causal: true }) },
  { name: 'full, one kv head (multi-query), Tq != Tk', q: [1, 4, 3, 4], k: [1, 1, 6, 4], v: [1, 1, 6, 2], opts: () => ({}) },
  { name: 'causal with dropout 0.3, 4 heads over 2', q: [2, 4, 6, 3], k: [2, 2, 6, 3], v: [2, 2, 6, 3], opts: () => ({ causal: true, dropout: { p: 0.3, rng: new Rng(42) } }) },
  { name: 'full with dropout, rank 5, 3 heads over 1', q: [2, 1, 3, 4, 2], k: [2, 1, 1, 5, 2], v: [2, 1, 1, 5, 3], opts: () => ({ dropout: { p: 0.25, rng: new Rng(8) } }) },
  // Past 128 query rows the native kernel multiplies each group's rows per block of rows.
  { name: 'causal over three query blocks, 4 heads over 2', q: [1, 4, 260, 4], k: [1, 2, 260, 4], v: [1, 2, 260, 3], opts: () => ({ causal: true }), big: true },
];

describe('scaledDotProductAttention, grouped-query', () => {
  for (const c of CASES) {
    it(`equals attention on explicitly repeated k, v: ${c.name}`, async (t) => {
      // The row blocks are the native kernel's; on a software Vulkan these sizes cost seconds.
      if (c.big && backend().name === 'webgpu') return t.skip('query blocks are a native-kernel path');
      const r = new Rng(c.q[1] * 10 + c.k[1]);
      const ins = [randn(c.q, r), randn(c.k, r), randn(c.v, r)];
      const grouped = ins.map((t) => onDevice(t, true));
      const plain = ins.map((t) => onDevice(t, true));
      const groups = c.q[c.q.length - 3] / c.k[c.k.length - 3];
      const y = scaledDotProductAttention(grouped[0], grouped[1], grouped[2], c.opts());
      const yr = scaledDotProductAttention(plain[0], repeatHeads(plain[1], groups), repeatHeads(plain[2], groups), c.opts());
      assert.deepEqual([...y.shape], [...yr.shape]);
      assertValues(await valuesOf(y), await valuesOf(yr), { rtol: 1e-12, atol: 1e-12, msg: 'forward' });
      const R = randn(y.shape, new Rng(5)).toArray();
      backward(y, seedFor(y, R));
      backward(yr, seedFor(yr, R));
      for (let i = 0; i < 3; i++) assertValues(await gradOf(grouped[i]), await gradOf(plain[i]), { rtol: 1e-10, atol: 1e-12, msg: `gradient of input ${i}` });
    });
    if (!c.big) it(`gradcheck ${c.name}`, async () => {
      const r = new Rng(17);
      await gradcheckOnBackend((q, k, v) => scaledDotProductAttention(q, k, v, c.opts()), [randn(c.q, r), randn(c.k, r), randn(c.v, r)], { name: c.name });
    });
  }

  it('under bf16 compute equals bf16 attention on repeated k, v (float32 accumulation apart)', async (t) => {
    const missing = missingKernels(backend(), ['toBf16', 'bf16View', 'gemm@bfloat16']);
    if (missing.length > 0) return t.skip(`${backend().name} does not provide ${missing.join(', ')}`);
    const r = new Rng(21);
    const ins = [randn([2, 6, 7, 8], r, 'float32'), randn([2, 2, 7, 8], r, 'float32'), randn([2, 2, 7, 8], r, 'float32')];
    const gy = randn([2, 6, 7, 8], r, 'float32').values();
    const run = async (repeat: boolean): Promise<number[][]> => {
      const xs = ins.map((x) => {
        const c = Tensor.from(x.values(), x.shape, 'float32', testDevice());
        c.requiresGrad = true;
        return c;
      });
      const y = withComputePrecision('bf16', () => {
        const [k, v] = repeat ? [repeatHeads(xs[1], 3), repeatHeads(xs[2], 3)] : [xs[1], xs[2]];
        const out = scaledDotProductAttention(xs[0], k, v, { causal: true, dropout: { p: 0.2, rng: new Rng(3) } });
        backward(out, seedFor(out, gy));
        return out;
      });
      return [await valuesOf(y), ...(await Promise.all(xs.map(gradOf)))];
    };
    const [grouped, repeated] = [await run(false), await run(true)];
    grouped.forEach((g, i) => assertClose(g, repeated[i], { rtol: 1e-5, atol: 1e-6, msg: i === 0 ? 'forward' : `gradient of input ${i - 1}` }));
  });

  it('query head h reads kv head floor(h / groups): with one-hot values each output is its kv head', async () => {
    // v of kv head j is constant j + 1 over keys, so any attention of query head h returns j + 1.
    const [heads, kvHeads, t] = [6, 3, 4];
    const r = new Rng(2);
    const v = Tensor.from(Float64Array.from({ length: kvHeads * t }, (_, i) => Math.floor(i / t) + 1), [1, kvHeads, t, 1], 'float64');
    const y = scaledDotProductAttention(onDevice(randn([1, heads, t, 2], r)), onDevice(randn([1, kvHeads, t, 2], r)), onDevice(v), { causal: true });
    const expected = Array.from({ length: heads * t }, (_, i) => Math.floor(Math.floor(i / t) / (heads / kvHeads)) + 1);
    assertValues(await valuesOf(y), expected, { rtol: 1e-12, atol: 1e-12 });
  });

  it('refuses head counts that do not divide, different batches and k/v heads that differ', async () => {
    const r = new Rng(1);
    const rn = (shape: number[]): Tensor => onDevice(randn(shape, r));
    assert.throws(() => scaledDotProductAttention(rn([1, 6, 3, 4]), rn([1, 4, 3, 4]), rn([1, 4, 3, 4])),
      /scaledDotProductAttention.*query heads \(6\) to be a multiple of the key\/value heads \(4\)/);
    assert.throws(() => scaledDotProductAttention(rn([2, 4, 3, 4]), rn([1, 2, 3, 4]), rn([1, 2, 3, 4])), /batch dimensions.*differ/);
    assert.throws(() => scaledDotProductAttention(rn([2, 4, 3, 4]), rn([2, 2, 3, 4]), rn([2, 1, 3, 4])), /k and v have different head counts \(2, 1\)/);
    assert.throws(() => scaledDotProductAttention(rn([4, 3, 4]), rn([2, 3, 4]), rn([2, 3, 4])), /leading/);
  });
});
