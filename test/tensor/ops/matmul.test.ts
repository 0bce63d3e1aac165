import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Tensor, backward, linear, matmul } from '../../../src/tensor/index.js';
import { gradcheck } from '../../helpers/gradcheck.js';
import { Rng, assertClose, assertShape, leaf, randn } from '../../helpers/tensors.js';

/** Naive batched reference: a [B, M, K] (or shared [M, K] when aBatch = false) @ b likewise. */
function refMatmul(a: Tensor, b: Tensor): number[] {
  const M = a.shape[a.ndim - 2], K = a.shape[a.ndim - 1], N = b.shape[b.ndim - 1];
  const batchA = a.size / (M * K), batchB = b.size / (K * N);
  const batch = Math.max(batchA, batchB);
  const out: number[] = [];
  for (let n = 0; n < batch; n++) {
    const ao = batchA === 1 ? 0 : n * M * K;
    const bo = batchB === 1 ? 0 : n * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.values()[ao + i * K + k] * b.values()[bo + k * N + j];
        out.push(s);
      }
    }
  }
  return out;
}

describe('matmul', () => {
  // K and N not multiples of 4 exercise the remainder loops of the unrolled js GEMM.
  const forms: [string, number[], number[], number[]][] = [
    ['2-d @ 2-d', [3, 5], [5, 6], [3, 6]],
    ['folded: [..., M, K] @ [K, N]', [2, 3, 5], [5, 7], [2, 3, 7]],
    ['shared A: [M, K] @ [..., K, N]', [3, 5], [2, 5, 6], [2, 3, 6]],
    ['shared A, 4-d B', [2, 3], [2, 2, 3, 5], [2, 2, 2, 5]],
    ['batched: [..., M, K] @ [..., K, N]', [2, 3, 5], [2, 5, 4], [2, 3, 4]],
    ['batched 4-d', [2, 2, 3, 4], [2, 2, 4, 1], [2, 2, 3, 1]],
  ];
  for (const [name, sa, sb, so] of forms) {
    it(`gradcheck ${name} ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, () => {
      const r = new Rng(sa.length * 7 + sb.length);
      gradcheck(matmul, [randn(sa, r), randn(sb, r)], { name: 'matmul' });
    });
    it(`gradcheck ${name}: one operand at a time`, () => {
      const r = new Rng(5);
      gradcheck(matmul, [randn(sa, r), randn(sb, r)], { name: 'matmul', wrt: [0] });
      gradcheck(matmul, [randn(sa, r), randn(sb, r)], { name: 'matmul', wrt: [1] });
    });
    it(`forward ${name} matches a naive product`, () => {
      const r = new Rng(6);
      const a = randn(sa, r), b = randn(sb, r);
      const y = matmul(a, b);
      assertShape(y, so);
      assertClose(y.toArray(), refMatmul(a, b), { rtol: 1e-12, atol: 1e-12 });
    });
  }

  it('gradcheck with the same tensor on both sides (x @ x)', () => {
    gradcheck((x) => matmul(x, x), [randn([3, 3], new Rng(1))], { name: 'matmul' });
  });

  it('known 2x2 product and its gradients', () => {
    const a = leaf(Tensor.from([1, 2, 3, 4], [2, 2], 'float64'));
    const b = leaf(Tensor.from([5, 6, 7, 8], [2, 2], 'float64'));
    const y = matmul(a, b);
    assert.deepEqual(y.toArray(), [19, 22, 43, 50]);
    backward(y, new Float64Array([1, 1, 1, 1]));
    // dA = 1 @ B^T, dB = A^T @ 1
    assert.deepEqual(Array.from(a.gradValues()!), [11, 15, 11, 15]);
    assert.deepEqual(Array.from(b.gradValues()!), [4, 4, 6, 6]);
  });

  it('float32 forward', () => {
    const y = matmul(Tensor.from([1, 2, 3, 4], [2, 2]), Tensor.from([5, 6, 7, 8], [2, 2]));
    assert.equal(y.dtype, 'float32');
    assert.deepEqual(y.toArray(), [19, 22, 43, 50]);
  });

  it('shape errors name the op and the shapes', () => {
    assert.throws(() => matmul(Tensor.zeros([3]), Tensor.zeros([3, 2])), /^ShapeError: matmul: .*at least 2-d.*\[3\], \[3, 2\]/);
    assert.throws(() => matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 2])), /matmul: inner dimensions differ \(shapes \[2, 3\], \[4, 2\]\)/);
    assert.throws(() => matmul(Tensor.zeros([2, 2, 3]), Tensor.zeros([3, 3, 4])), /matmul: batch dimensions differ \(shapes \[2, 2, 3\], \[3, 3, 4\]\)/);
    assert.throws(() => matmul(Tensor.zeros([2, 2, 3]), Tensor.zeros([1, 2, 3, 4])), /matmul: batch dimensions differ \(shapes \[2, 2, 3\], \[1, 2, 3, 4\]\)/);
    assert.throws(() => matmul(Tensor.zeros([2, 3]), Tensor.zeros([2, 4, 2])), /matmul: inner dimensions differ \(shapes \[2, 3\], \[2, 4, 2\]\)/);
  });
});

describe('linear', () => {
  const cases: [string, number[], boolean][] = [
    ['2-d input with bias', [4, 3], true],
    ['2-d input without bias', [4, 3], false],
    ['3-d input with bias', [2, 3, 3], true],
    ['1-d input with bias', [3], true],
  ];
  for (const [name, xs, withBias] of cases) {
    it(`gradcheck ${name}`, () => {
      const r = new Rng(xs.length + (withBias ? 10 : 0));
      const inputs = [randn(xs, r), randn([5, 3], r)];
      if (withBias) inputs.push(randn([5], r));
      gradcheck((x, w, b) => linear(x, w, b ?? null), inputs, { name: 'linear' });
    });
  }
  it('gradcheck: weight and bias only (frozen input), input only', () => {
    const r = new Rng(3);
    gradcheck((x, w, b) => linear(x, w, b), [randn([4, 3], r), randn([2, 3], r), randn([2], r)], { name: 'linear', wrt: [1, 2] });
    gradcheck((x, w, b) => linear(x, w, b), [randn([4, 3], r), randn([2, 3], r), randn([2], r)], { name: 'linear', wrt: [0] });
  });
  it('forward equals x @ W^T + b', () => {
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3], 'float64');
    const w = Tensor.from([1, 0, -1, 2, 1, 0], [2, 3], 'float64');
    const b = Tensor.from([0.5, -1], [2], 'float64');
    assert.deepEqual(linear(x, w, b).toArray(), [-1.5, 3, -1.5, 12]);
    assert.deepEqual(linear(x, w, null).toArray(), [-2, 4, -2, 13]);
    assertShape(linear(Tensor.zeros([2, 5, 3], 'float64'), w, b), [2, 5, 2]);
  });
  it('ignores stale output memory: bias is written, not added', () => {
    const r = new Rng(4);
    const x = randn([3, 4], r), w = randn([2, 4], r), b = randn([2], r);
    assertClose(linear(x, w, b).toArray(), linear(x, w, b).toArray());
  });
  it('shape errors name the op and the shapes', () => {
    const re = (s: string): RegExp => new RegExp(`^ShapeError: linear: .*\\(shapes ${s}\\)`);
    assert.throws(() => linear(Tensor.zeros([4, 3]), Tensor.zeros([5, 4]), null), re('\\[4, 3\\], \\[5, 4\\], \\[\\]'));
    assert.throws(() => linear(Tensor.zeros([4, 3]), Tensor.zeros([5, 3]), Tensor.zeros([4])), re('\\[4, 3\\], \\[5, 3\\], \\[4\\]'));
    assert.throws(() => linear(Tensor.zeros([4, 3]), Tensor.zeros([15]), null), re('\\[4, 3\\], \\[15\\], \\[\\]'));
  });
});
