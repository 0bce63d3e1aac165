/**
 * The native bf16 GEMM's x·Wᵀ against a float64 reference of the bf16 products for every M from 1
 * to 16: the thin kernels up to THIN_ROWS (src/native/gemv_bf16.cc: AVX512-BF16; gemv_bf16_neon.cc: NEON, BFDOT; gemv_bf16_amx.cc:
 * AMX tiles from two rows of x), oneDNN past it: odd K around the 32-element vector (the masked tail; the AMX kernel takes whole tiles
 * only), N not a multiple of the 4-row block nor of the 16-row tile, alpha, beta = 1, a bias. A long
 * weight (the prefetch ahead of the rows) whole and in row slices, bit for bit. And the policy: which
 * M take which kernel (where the CPU has the instructions; elsewhere none is thin), and which never
 * pack (THIN_ROWS), or that nothing packs where the build cannot (no oneDNN: OpenBLAS-only, arm64).
 * The instructions are the addon's CPU table's word (nativeCpuTable, capped by SMOLCLUSTER_CPU),
 * never /proc/cpuinfo: under qemu an arm64 process reads the x86 host's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HostBackend } from '../../../src/tensor/backend.js';
import { jsHostBackend as js } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeCpuTable, nativeInternals } from '../../../src/tensor/backends/native.js';
import { Tensor, backendFor, isPacked, linear, markUnchanging, noGrad, setBackend, toBf16, withComputePrecision } from '../../../src/tensor/index.js';
import { THIN_ROWS } from '../../../src/tensor/ops/packed_weights.js';
import { Rng } from '../../../src/util/rng.js';
import { bf16PackingExpected, nativePacksBf16 } from '../../helpers/bf16_packing.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;
const skip = native ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

function randomBf16(n: number, rng: Rng): Uint16Array {
  const x = Float32Array.from({ length: n }, () => rng.normal());
  const out = new Uint16Array(n);
  js.toBf16(x, out);
  return out;
}

/** The x86-64 thin kernels (gemv_bf16.cc, gemv_bf16_amx.cc), at the addon's (capped) CPU level. */
const cpu = nativeCpuTable();
const x64 = process.arch === 'x64' && cpu?.arch === 'x64';
const hasAvx512Bf16 = x64 && cpu.features.avx512bf16 === true;
const hasAmx = x64 && cpu.features.amxBf16 === true;
/** arm64's thin kernels (gemv_bf16_neon.cc): BFDOT where the table has bf16, else bf16 widened in registers. */
const neonKernel = process.arch === 'arm64' && cpu?.arch === 'arm64' && cpu.features.neon ? (cpu.features.bf16 ? 'thin neon_bf16' : 'thin neon') : null;

interface Case { M: number; N: number; K: number; alpha: number; beta: 0 | 1; bias: boolean }

interface Operands { A: Uint16Array; B: Uint16Array; C: Float32Array; bias: Float32Array | null }

function operands(c: Case): Operands {
  const rng = new Rng(c.M * 1000 + c.N * 10 + c.K);
  return {
    A: randomBf16(c.M * c.K, rng),
    B: randomBf16(c.N * c.K, rng),
    C: Float32Array.from({ length: c.M * c.N }, () => rng.normal()),
    bias: c.bias ? Float32Array.from({ length: c.N }, () => rng.normal()) : null,
  };
}

/** bf16 bits to their values (exact). */
const widen = (x: Uint16Array): Float32Array => new Float32Array(Uint32Array.from(x, (u) => u << 16).buffer);

/**
 * The native product's C against float64 sums of the same bf16 products: each element within a
 * float32 summation's error of its products' magnitudes (K roundings of 2⁻²⁴), plus the add's.
 * arm64's BFDOT rounds each pair's sum once more (to odd: 2⁻²³ of the pair) before adding it, K/2
 * roundings of 2⁻²³ of the pairs within the same bound.
 */
function checkAgainstFloat64(c: Case, o: Operands, got: Float32Array): void {
  const [A, B] = [widen(o.A), widen(o.B)];
  for (let m = 0; m < c.M; m++) {
    for (let n = 0; n < c.N; n++) {
      let sum = 0;
      let magnitude = 0;
      for (let k = 0; k < c.K; k++) {
        const p = A[m * c.K + k] * B[n * c.K + k];
        sum += p;
        magnitude += Math.abs(p);
      }
      const add = o.bias ? o.bias[n] : c.beta * o.C[m * c.N + n];
      const want = c.alpha * sum + add;
      const bound = (c.K + 2) * 2 ** -24 * (Math.abs(c.alpha) * magnitude + Math.abs(add)) + 1e-30;
      const i = m * c.N + n;
      if (!(Math.abs(got[i] - want) <= bound)) assert.fail(`C[${m}, ${n}]: ${got[i]} vs ${want} (bound ${bound})`);
    }
  }
}

/** C = alpha·A·Bᵀ (+ bias | + beta·C) on backend k from the case's seeded operands. */
function product(k: HostBackend, c: Case, o = operands(c)): Float32Array {
  const C = o.C.slice();
  k.bfloat16!.gemm(false, true, c.M, c.N, c.K, c.alpha, o.A, 0, o.B, 0, c.beta, C, 0, 1, o.bias);
  return C;
}

const describeCase = (c: Case): string =>
  `M ${c.M}, N ${c.N}, K ${c.K}${c.alpha !== 1 ? `, alpha ${c.alpha}` : ''}${c.beta ? ', beta 1' : ''}${c.bias ? ', bias' : ''}`;

describe('bf16 GEMM, thin x·Wᵀ kernels: against float64 sums of the bf16 products', { skip }, () => {
  const cases: Case[] = [];
  for (let M = 1; M <= 16; M++) {
    // K 64: whole tiles (AMX from two rows); 33 and 100: masked tails (AVX512-BF16). N 37: a partial block and tile.
    cases.push({ M, N: 37, K: 64, alpha: 1, beta: 0, bias: M % 2 === 0 });
    cases.push({ M, N: 37, K: M % 2 === 0 ? 33 : 100, alpha: 1, beta: 0, bias: false });
  }
  cases.push({ M: 1, N: 37, K: 1, alpha: 1, beta: 0, bias: false }, { M: 8, N: 5, K: 31, alpha: 1, beta: 0, bias: true });
  for (const M of [1, 3, 8, 12]) cases.push({ M, N: 21, K: 96, alpha: 0.5, beta: 1, bias: false }, { M, N: 21, K: 40, alpha: 0.5, beta: 1, bias: false });
  cases.push({ M: 8, N: 768, K: 768, alpha: 1, beta: 0, bias: true });
  test(`every M from 1 to 16, tails, alpha, beta, bias (${cases.length} shapes)`, () => {
    for (const c of cases) {
      const o = operands(c);
      try {
        checkAgainstFloat64(c, o, product(native!, c, o));
      } catch (e) {
        throw new Error(`${describeCase(c)}: ${(e as Error).message}`);
      }
    }
  });

  // Both kernels prefetch the weight ahead of the rows they read (up to the weight's end): a weight
  // of many blocks, split or whole, must give every output element the very same sum, so a fused
  // [q; k; v] product (SmolLM2-135M's 576 + 192 + 192 rows) equals the three unfused ones.
  for (const [M, K] of [[1, 576], [1, 100], [8, 576], [3, 96]]) {
    test(`M ${M}: W whole equals W in row slices, bit for bit (K ${K}, 960 rows)`, () => {
      const rng = new Rng(K + M);
      const parts = [576, 192, 192];
      const N = parts.reduce((a, b) => a + b, 0);
      const x = randomBf16(M * K, rng);
      const W = randomBf16(N * K, rng);
      const whole = new Float32Array(M * N);
      native!.bfloat16!.gemm(false, true, M, N, K, 1, x, 0, W, 0, 0, whole, 0, 1);
      let row = 0;
      for (const n of parts) {
        const part = new Float32Array(M * n);
        native!.bfloat16!.gemm(false, true, M, n, K, 1, x, 0, W.subarray(row * K, (row + n) * K), 0, 0, part, 0, 1);
        for (let m = 0; m < M; m++) assert.deepEqual(part.subarray(m * n, (m + 1) * n), whole.subarray(m * N + row, m * N + row + n), `row ${m}, W rows ${row}..${row + n}`);
        row += n;
      }
    });
  }

  test(`kernel by M: one row AVX512-BF16, 2 to ${THIN_ROWS} rows AMX where it has whole tiles, more rows oneDNN`, { skip: hasAvx512Bf16 ? false : `no avx512_bf16 at cpu level ${cpu?.level}` }, () => {
    const impl = (M: number, K: number): string => {
      product(native!, { M, N: 20, K, alpha: 1, beta: 0, bias: false });
      return nativeInternals()!.lastBf16GemmImpl();
    };
    assert.equal(impl(1, 64), 'thin avx512_bf16');
    for (let M = 2; M <= THIN_ROWS; M++) assert.equal(impl(M, 64), hasAmx ? 'thin amx_bf16' : 'thin avx512_bf16', `M ${M}`);
    assert.equal(impl(3, 33), 'thin avx512_bf16', 'a K of no whole tiles');
    for (const M of [THIN_ROWS + 1, 16]) assert.doesNotMatch(impl(M, 64), /^thin/, `M ${M}: the native limit (gemv_bf16.h kThinBf16Rows) is THIN_ROWS`);
  });

  test(`kernel by M on arm64: 1 to ${THIN_ROWS} rows NEON (BFDOT where the CPU has bf16), more rows the library's`, { skip: neonKernel ? false : `no NEON kernel at cpu level ${cpu?.level} (${process.arch})` }, () => {
    for (let M = 1; M <= THIN_ROWS; M++) {
      product(native!, { M, N: 20, K: 64, alpha: 1, beta: 0, bias: false });
      assert.equal(nativeInternals()!.lastBf16GemmImpl(), neonKernel, `M ${M}`);
    }
    product(native!, { M: THIN_ROWS + 1, N: 20, K: 64, alpha: 1, beta: 0, bias: false });
    assert.doesNotMatch(nativeInternals()!.lastBf16GemmImpl(), /^thin/, `M ${THIN_ROWS + 1}: the native limit is THIN_ROWS`);
  });

  test('kernel by M where no thin kernel runs (no AVX512-BF16, a lower cap, arm64 capped at generic): oneDNN, or the float32 product without it', { skip: hasAvx512Bf16 || neonKernel ? 'the thin kernels run here (previous tests)' : false }, () => {
    const dnnl = nativeInternals()!.libraries.dnnl;
    for (const M of [1, 2, THIN_ROWS, THIN_ROWS + 1]) {
      product(native!, { M, N: 20, K: 64, alpha: 1, beta: 0, bias: false });
      const impl = nativeInternals()!.lastBf16GemmImpl();
      assert.doesNotMatch(impl, /^thin/, `M ${M} (cpu level ${cpu?.level})`);
      if (!dnnl) assert.equal(impl, 'float32 fallback (no oneDNN)', `M ${M}`);
    }
  });
});

describe('packing policy: up to THIN_ROWS rows a weight keeps its plain copy', { skip }, () => {
  let previous = '';
  before(() => {
    previous = backendFor({ device: 'cpu', dtype: 'float32' }).name;
    setBackend('native');
  });
  after(() => setBackend(previous));

  const rows = (M: number, K: number): Tensor => Tensor.from(Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)), [M, K], 'float32');
  const use = (w: Tensor, M: number): void => void noGrad(() => withComputePrecision('bf16', () => linear(toBf16(rows(M, w.shape[1])), w, null)));

  const packs = nativePacksBf16();
  const expected = bf16PackingExpected();
  test('packing is there exactly where the build and the CPU table say (oneDNN; on x86-64 at a level with AVX-512)', { skip: expected === null && `oneDNN's own dispatch decides at cpu level ${cpu?.level}` }, () => {
    assert.equal(packs, expected, `libraries ${JSON.stringify(nativeInternals()?.libraries)}, cpu level ${cpu?.level}`);
  });

  test(`a marked weight serving ${THIN_ROWS} rows or fewer never packs; one serving more packs from its second use (where the build packs at all)`, () => {
    assert.equal(THIN_ROWS, 8, 'bench:generate A/B measured the thin AMX kernel over held casts in huge pages ahead of the packed product at 8 rows');
    const w = noGrad(() => toBf16(rows(48, 64)));
    markUnchanging(w);
    for (let M = 1; M <= THIN_ROWS; M++) for (let i = 0; i < 2; i++) use(w, M);
    assert.equal(isPacked(w), false);
    use(w, THIN_ROWS + 1);
    use(w, THIN_ROWS + 1);
    assert.equal(isPacked(w), packs, packs ? 'packed from its second use' : 'this build packs nothing: the plain product serves every use');
  });
});
