/**
 * The native bf16 GEMM's thin path (src/native/gemv_bf16.cc: x·Wᵀ with one row of x, the linears
 * of a batch-1 decode step) against the js bf16 GEMM: odd K around the 32-element vector (the
 * masked tail), N not a multiple of the 4-row block, alpha, beta = 1, a bias, and rows above the
 * limit going to oneDNN; a long weight (the prefetch ahead of the rows) whole and in row slices bit
 * for bit; and that it is the path taken where the CPU has AVX512-BF16.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { HostBackend } from '../../../src/tensor/backend.js';
import { jsHostBackend as js } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeInternals } from '../../../src/tensor/backends/native.js';
import { Rng } from '../../../src/util/rng.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;
const skip = native ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

function randomBf16(n: number, rng: Rng): Uint16Array {
  const x = Float32Array.from({ length: n }, () => rng.normal());
  const out = new Uint16Array(n);
  js.toBf16(x, out);
  return out;
}

function assertNear(a: Float32Array, b: Float32Array, rtol: number, msg: string): void {
  const scale = b.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - b[i]) <= rtol * scale)) assert.fail(`${msg}: element ${i}: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

function cpuHasAvx512Bf16(): boolean {
  try {
    return /\bavx512_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) && /\bavx512bw\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

interface Case { M: number; N: number; K: number; alpha: number; beta: 0 | 1; bias: boolean }

/** C = alpha·A·Bᵀ (+ bias | + beta·C) on backend k, from the same seeded operands. */
function product(k: HostBackend, c: Case): Float32Array {
  const rng = new Rng(c.M * 1000 + c.N * 10 + c.K);
  const A = randomBf16(c.M * c.K, rng);
  const B = randomBf16(c.N * c.K, rng);
  const C = Float32Array.from({ length: c.M * c.N }, () => rng.normal());
  const bias = c.bias ? Float32Array.from({ length: c.N }, () => rng.normal()) : null;
  k.bfloat16!.gemm(false, true, c.M, c.N, c.K, c.alpha, A, 0, B, 0, c.beta, C, 0, 1, bias);
  return C;
}

describe('bf16 GEMM, thin x·Wᵀ path: native against js', { skip }, () => {
  const cases: Case[] = [];
  for (const M of [1, 2]) for (const K of [1, 31, 32, 33, 100]) cases.push({ M, N: 37, K, alpha: 1, beta: 0, bias: false });
  cases.push({ M: 1, N: 768, K: 768, alpha: 1, beta: 0, bias: true }, { M: 1, N: 6, K: 64, alpha: 0.5, beta: 1, bias: false }, { M: 1, N: 3, K: 40, alpha: 1, beta: 0, bias: true });
  for (const c of cases) {
    test(`M ${c.M}, N ${c.N}, K ${c.K}${c.alpha !== 1 ? `, alpha ${c.alpha}` : ''}${c.beta ? ', beta 1' : ''}${c.bias ? ', bias' : ''}`, () => {
      assertNear(product(native!, c), product(js, c), 1e-5, 'C');
    });
  }

  // The kernel prefetches the weight 12 KB ahead of the rows it reads (up to the weight's end): a
  // weight of many blocks, split or whole, must give every output element the very same dot product,
  // so a fused [q; k; v] product (SmolLM2-135M's 576 + 192 + 192 rows) equals the three unfused ones.
  for (const K of [576, 100]) {
    test(`one row against W whole equals W in row slices, bit for bit (K ${K}, 960 rows)`, () => {
      const rng = new Rng(K);
      const parts = [576, 192, 192];
      const N = parts.reduce((a, b) => a + b, 0);
      const x = randomBf16(K, rng);
      const W = randomBf16(N * K, rng);
      const whole = new Float32Array(N);
      native!.bfloat16!.gemm(false, true, 1, N, K, 1, x, 0, W, 0, 0, whole, 0, 1);
      let row = 0;
      for (const n of parts) {
        const part = new Float32Array(n);
        native!.bfloat16!.gemm(false, true, 1, n, K, 1, x, 0, W.subarray(row * K, (row + n) * K), 0, 0, part, 0, 1);
        assert.deepEqual(part, whole.subarray(row, row + n), `rows ${row}..${row + n}`);
        row += n;
      }
      const reference = new Float32Array(N);
      js.bfloat16!.gemm(false, true, 1, N, K, 1, x, 0, W, 0, 0, reference, 0, 1);
      assertNear(whole, reference, 1e-5, 'C');
    });
  }

  test('runs the thin kernel for one row where the CPU has AVX512-BF16, oneDNN for more', { skip: cpuHasAvx512Bf16() ? false : 'no avx512_bf16 on this CPU' }, () => {
    product(native!, { M: 1, N: 16, K: 64, alpha: 1, beta: 0, bias: false });
    assert.equal(nativeInternals()!.lastBf16GemmImpl(), 'thin avx512_bf16');
    product(native!, { M: 2, N: 16, K: 64, alpha: 1, beta: 0, bias: false });
    assert.notEqual(nativeInternals()!.lastBf16GemmImpl(), 'thin avx512_bf16');
  });
});
