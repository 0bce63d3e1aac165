/**
 * The native fp32 GEMM's thin path (src/native/gemm_thin.cc: x·Wᵀ with at most 16 rows of x, the
 * linears of a batch-8 decode step) against the js GEMM, in the native gemm tests' tolerance: every
 * M in 1..16, K around the 16-float vector (the masked tail), N not a multiple of a block of W rows,
 * a bias, alpha, beta; batched products with gaps; every block of W rows (3 rows up to 8 rows of x
 * per pass, 2 rows at 9-12) with the rows left over; and that `auto` takes it for 1-12 rows where
 * the CPU has AVX-512 and leaves it for more rows, other transposes and tiny products — and never
 * takes it where the kernel does not run (no AVX-512, a lower SMOLCLUSTER_CPU cap, arm64: there the
 * library's GEMM serves every row count). Whether it runs is the addon's CPU table's word
 * (nativeCpuTable), never /proc/cpuinfo: under qemu an arm64 process reads the x86 host's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsHostBackend as js } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeCpuTable, nativeInternals } from '../../../src/tensor/backends/native.js';
import { Rng } from '../../../src/util/rng.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;
const skip = native ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

/** Whether the thin fp32 kernel runs in this process: x86-64 with AVX-512 at the addon's (capped) level (gemm_thin.cc). */
const cpu = nativeCpuTable();
// The thin kernel: AVX-512 on x86-64 (gemm_thin.cc), NEON on arm64 (gemm_thin_neon.cc).
const thinRuns = process.arch === cpu?.arch && (cpu.arch === 'x64' ? cpu.features.avx512 === true : cpu.features.neon === true);

interface Case { M: number; N: number; K: number; alpha?: number; beta?: number; bias?: boolean; batch?: number; gap?: number }

/** C = alpha·A·Bᵀ (+ bias | + beta·C) on the js backend and on native, from the same seeded operands. */
function compare(c: Case, engine: string): void {
  const rng = new Rng(c.M * 10007 + c.N * 101 + c.K);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const batch = c.batch ?? 1;
  const gap = c.gap ?? 0; // elements between a batch's matrices
  const [sA, sB, sC] = [c.M * c.K + gap, c.N * c.K + gap, c.M * c.N + gap];
  const A = rand(batch * sA);
  const B = rand(batch * sB);
  const C0 = rand(batch * sC);
  const beta = c.beta ?? 0;
  if (beta === 0 && !c.bias) C0.fill(NaN); // beta = 0 must not read C
  const bias = c.bias ? rand(c.N) : null;
  const want = Float32Array.from(C0);
  js.gemm(false, true, c.M, c.N, c.K, c.alpha ?? 1, A, sA, B, sB, beta, want, sC, batch, bias);
  const got = Float32Array.from(C0);
  nativeInternals()!.setGemmEngine(engine);
  try {
    native!.gemm(false, true, c.M, c.N, c.K, c.alpha ?? 1, A, sA, B, sB, beta, got, sC, batch, bias);
  } finally {
    nativeInternals()!.setGemmEngine('auto');
  }
  // As the native gemm tests: sums of K unit-normal products, the error grows like sqrt(K).
  const atol = 8e-6 * Math.sqrt(c.K + 1);
  for (let i = 0; i < want.length; i++) {
    const [a, e] = [got[i], want[i]];
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    if (!(Math.abs(a - e) <= atol + 1e-4 * Math.abs(e))) assert.fail(`${engine} ${JSON.stringify(c)}: C[${i}] native ${a} vs js ${e}`);
  }
}

describe('fp32 GEMM, thin x·Wᵀ path: native against js', { skip }, () => {
  test('every M in 1..16 against K around the vector width and N around the row block', () => {
    for (let M = 1; M <= 16; M++) {
      for (const K of [1, 15, 16, 17, 100]) for (const N of [1, 3, 37]) compare({ M, N, K }, 'thin');
    }
  });

  test('a bias, alpha and beta, on every row count of a 4-row pass', () => {
    for (let M = 1; M <= 16; M++) {
      compare({ M, N: 39, K: 77, bias: true }, 'thin');
      compare({ M, N: 21, K: 33, alpha: -0.5, beta: 0.25 }, 'thin');
      compare({ M, N: 6, K: 40, alpha: 2, bias: true }, 'thin');
    }
  });

  test('every block of W rows with one or two rows left over, K past whole vectors, in one pass or two', () => {
    // N mod 3 and N mod 2 cover the leftover rows of the 3-row (1-8 and 13-16 rows of x) and 2-row (9-12) blocks.
    for (const M of [1, 3, 7, 8, 9, 12, 13, 16]) {
      for (const N of [2, 4, 5, 6, 38, 40]) compare({ M, N, K: 47, bias: M % 2 === 0 }, 'thin');
    }
    compare({ M: 1, N: 1000, K: 600, alpha: 0.5, beta: 2 }, 'thin'); // a prefetch distance past every short row
  });

  test('decode-sized products, batched products with gaps between matrices, and the auto choice', () => {
    compare({ M: 8, N: 771, K: 576, bias: true }, 'thin');
    compare({ M: 16, N: 193, K: 1539 }, 'thin');
    compare({ M: 5, N: 13, K: 29, batch: 3, gap: 7, alpha: 0.5, beta: 1 }, 'thin');
    compare({ M: 8, N: 300, K: 100, bias: true }, 'auto');
    compare({ M: 17, N: 300, K: 100, bias: true }, 'auto');
  });

  const run = (M: number, N: number, K: number, tb: boolean): string => {
    native!.gemm(false, tb, M, N, K, 1, new Float32Array(M * K), 0, new Float32Array(N * K), 0, 0, new Float32Array(M * N), 0, 1);
    return nativeInternals()!.lastGemmEngine();
  };

  test('the CPU table the choice reads is this process\'s architecture\'s', () => {
    assert.ok(cpu, 'the addon loaded but gave no CPU table');
    assert.equal(cpu.arch, process.arch);
    assert.ok(cpu.levels.includes(cpu.level), `level ${cpu.level} is not one of ${cpu.levels.join(', ')}`);
  });

  test('where the thin kernel does not run (no AVX-512, a lower cap, arm64 capped at generic), auto gives every row count to the library\'s GEMM', { skip: thinRuns ? 'the thin kernel runs here (next test)' : false }, () => {
    for (const M of [1, 2, 3, 4, 8, 12, 13, 16]) assert.notEqual(run(M, 64, 64, true), 'thin', `M ${M} (cpu level ${cpu?.level})`);
    const library = nativeInternals()!.libraries.dnnl ? /^dnnl/ : nativeInternals()!.libraries.cblas ? /^cblas$/ : /^own$/;
    assert.match(run(8, 64, 64, true), library);
  });

  test('auto runs it for 1..12 rows of x·Wᵀ where the CPU has AVX-512 (arm64: NEON); not for 13+ rows, A·B or a tiny product', { skip: thinRuns ? false : `the thin kernel does not run here (${process.arch}, cpu level ${cpu?.level})` }, () => {
    // 1-3 rows too: over a decode step's distinct weights it streams W faster than dnnl_sgemm's gemv (gemm.h).
    for (const M of [1, 2, 3, 4, 8, 12]) assert.equal(run(M, 64, 64, true), 'thin', `M ${M}`);
    for (const M of [13, 16]) assert.notEqual(run(M, 64, 64, true), 'thin', `M ${M}`);
    assert.notEqual(run(8, 64, 64, false), 'thin');
    assert.notEqual(run(2, 4, 4, true), 'thin'); // our plain loops: a library call costs more
  });

  test('auto gives a layer\'s x·Wᵀ of 13-256 rows and 512+ columns to oneDNN\'s matmul primitive (gemm.h layerRowsProduct); a vocabulary head\'s, a narrow layer\'s, A·B and more rows to dnnl_sgemm', { skip: nativeInternals()?.libraries.dnnl ? false : 'built without oneDNN' }, () => {
    for (const M of [13, 32, 256]) assert.equal(run(M, 576, 64, true), 'dnnl', `M ${M}`);
    assert.equal(run(32, 16384, 64, true), 'dnnl_sgemm');
    assert.equal(run(32, 128, 784, true), 'dnnl_sgemm');
    assert.equal(run(32, 576, 64, false), 'dnnl_sgemm');
    assert.equal(run(257, 576, 64, true), 'dnnl_sgemm');
  });
});
