import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, backward, linear, matmul } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, onDevice, seedFor, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
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
    it(`gradcheck ${name} ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, async () => {
      const r = new Rng(sa.length * 7 + sb.length);
      await gradcheckOnBackend(matmul, [randn(sa, r), randn(sb, r)], { name: 'matmul' });
    });
    it(`gradcheck ${name}: one operand at a time`, async () => {
      const r = new Rng(5);
      await gradcheckOnBackend(matmul, [randn(sa, r), randn(sb, r)], { name: 'matmul', wrt: [0] });
      await gradcheckOnBackend(matmul, [randn(sa, r), randn(sb, r)], { name: 'matmul', wrt: [1] });
    });
    it(`forward ${name} matches a naive product`, async () => {
      const r = new Rng(6);
      const a = randn(sa, r), b = randn(sb, r);
      const y = matmul(onDevice(a), onDevice(b));
      assertShape(y, so);
      assertValues(await valuesOf(y), refMatmul(a, b), { rtol: 1e-12, atol: 1e-12 });
    });
  }

  it('gradcheck with the same tensor on both sides (x @ x)', async () => {
    await gradcheckOnBackend((x) => matmul(x, x), [randn([3, 3], new Rng(1))], { name: 'matmul' });
  });

  it('known 2x2 product and its gradients', async () => {
    const a = leaf(tensor([1, 2, 3, 4], [2, 2]));
    const b = leaf(tensor([5, 6, 7, 8], [2, 2]));
    const y = matmul(a, b);
    assertValues(await valuesOf(y), [19, 22, 43, 50]);
    backward(y, seedFor(y, [1, 1, 1, 1]));
    // dA = 1 @ B^T, dB = A^T @ 1
    assertValues(await gradOf(a), [11, 15, 11, 15]);
    assertValues(await gradOf(b), [4, 4, 6, 6]);
  });

  it('float32 forward', async () => {
    const y = matmul(tensor([1, 2, 3, 4], [2, 2], 'float32'), tensor([5, 6, 7, 8], [2, 2], 'float32'));
    assert.equal(y.dtype, 'float32');
    assertValues(await valuesOf(y), [19, 22, 43, 50], undefined, 'float32');
  });

  it('shape errors name the op and the shapes', async () => {
    assert.throws(() => matmul(zeros([3]), zeros([3, 2])), /^ShapeError: matmul: .*at least 2-d.*\[3\], \[3, 2\]/);
    assert.throws(() => matmul(zeros([2, 3]), zeros([4, 2])), /matmul: inner dimensions differ \(shapes \[2, 3\], \[4, 2\]\)/);
    assert.throws(() => matmul(zeros([2, 2, 3]), zeros([3, 3, 4])), /matmul: batch dimensions differ \(shapes \[2, 2, 3\], \[3, 3, 4\]\)/);
    assert.throws(() => matmul(zeros([2, 2, 3]), zeros([1, 2, 3, 4])), /matmul: batch dimensions differ \(shapes \[2, 2, 3\], \[1, 2, 3, 4\]\)/);
    assert.throws(() => matmul(zeros([2, 3]), zeros([2, 4, 2])), /matmul: inner dimensions differ \(shapes \[2, 3\], \[2, 4, 2\]\)/);
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
    it(`gradcheck ${name}`, async () => {
      const r = new Rng(xs.length + (withBias ? 10 : 0));
      const inputs = [randn(xs, r), randn([5, 3], r)];
      if (withBias) inputs.push(randn([5], r));
      await gradcheckOnBackend((x, w, b) => linear(x, w, b ?? null), inputs, { name: 'linear' });
    });
  }
  it('gradcheck: weight and bias only (frozen input), input only', async () => {
    const r = new Rng(3);
    await gradcheckOnBackend((x, w, b) => linear(x, w, b), [randn([4, 3], r), randn([2, 3], r), randn([2], r)], { name: 'linear', wrt: [1, 2] });
    await gradcheckOnBackend((x, w, b) => linear(x, w, b), [randn([4, 3], r), randn([2, 3], r), randn([2], r)], { name: 'linear', wrt: [0] });
  });
  it('forward equals x @ W^T + b', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const w = tensor([1, 0, -1, 2, 1, 0], [2, 3]);
    const b = tensor([0.5, -1], [2]);
    assertValues(await valuesOf(linear(x, w, b)), [-1.5, 3, -1.5, 12]);
    assertValues(await valuesOf(linear(x, w, null)), [-2, 4, -2, 13]);
    assertShape(linear(zeros([2, 5, 3], 'float64'), w, b), [2, 5, 2]);
  });
  it('ignores stale output memory: bias is written, not added', async () => {
    const r = new Rng(4);
    const x = onDevice(randn([3, 4], r)), w = onDevice(randn([2, 4], r)), b = onDevice(randn([2], r));
    assertClose(await valuesOf(linear(x, w, b)), await valuesOf(linear(x, w, b)));
  });
  it('shape errors name the op and the shapes', async () => {
    const re = (s: string): RegExp => new RegExp(`^ShapeError: linear: .*\\(shapes ${s}\\)`);
    assert.throws(() => linear(zeros([4, 3]), zeros([5, 4]), null), re('\\[4, 3\\], \\[5, 4\\], \\[\\]'));
    assert.throws(() => linear(zeros([4, 3]), zeros([5, 3]), zeros([4])), re('\\[4, 3\\], \\[5, 3\\], \\[4\\]'));
    assert.throws(() => linear(zeros([4, 3]), zeros([15]), null), re('\\[4, 3\\], \\[15\\], \\[\\]'));
  });
});
