/**
 * The native backend against the pure-TypeScript one: every HostBackend method on seeded random
 * inputs, including odd sizes, transposes, broadcast strides, strided/padded conv and pooling and
 * the accumulate conventions; then each alternative engine compiled into the addon (the gemm and
 * convolution fallbacks) on the same cases, and the multi-threaded paths.
 *
 * Without a built addon every test skips with the reason, except under CI=true, where a missing
 * addon is a failure (CI builds it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type {
  HostBackend, BinaryOp, Conv2dGeometry, Pool2dGeometry, UnaryOp,
} from '../../../src/tensor/backend.js';
import { jsHostBackend as jsBackend } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { erfc } from '../../../src/tensor/backends/js/erf.js';
import { loadNativeBackend, nativeInternals } from '../../../src/tensor/backends/native.js';
import { Rng } from '../../../src/util/rng.js';

const loaded = loadNativeBackend();
const loadedNative = loaded.backend ? hostKernels(loaded.backend) : null;
const reason = loaded.reason;
const internals = nativeInternals();
const js = jsBackend;

/** The cross-entropy a kernel leaves in its one-element loss buffer. */
function xent(k: HostBackend, logits: Float32Array, labels: Int32Array, rows: number, cols: number, probs: Float32Array, probScale = 1): number {
  const loss = new Float64Array(1);
  k.softmaxCrossEntropy(logits, labels, rows, cols, probs, probScale, loss);
  return loss[0];
}

/** The sum of squares a kernel leaves in its one-element output buffer. */
function sumSq(k: HostBackend, x: Float32Array): number {
  const out = new Float64Array(1);
  k.sumSquares(x, 1, out);
  return out[0];
}

/** A test that needs the addon: skipped, with the reason, when it is not built. */
function ntest(name: string, fn: (native: HostBackend) => void): void {
  test(name, (t) => {
    if (!loadedNative) {
      t.skip(`native addon unavailable: ${reason}`);
      return;
    }
    fn(loadedNative);
  });
}

// CI builds the addon (npm install), so there a missing addon is a failure, not a skip.
if (!loadedNative && process.env.CI === 'true') {
  test('the native addon is built (required under CI=true)', () => assert.fail(`native addon missing: ${reason}`));
}
// CI installs libdnnl-dev for x86-64 and libopenblas-dev:arm64 for the arm64 check (.ci/run; Debian's
// arm64 oneDNN cannot be installed beside the amd64 one: docs/NATIVE.md, "linux-arm64"): an addon
// that fell back from the library CI gave its architecture is a failed build there.
const CI_LIBRARY = process.arch === 'arm64' ? { name: 'OpenBLAS', pattern: /^OpenBLAS\// } : { name: 'oneDNN', pattern: /oneDNN/ };
if (loadedNative && process.env.CI === 'true') {
  test(`the native addon uses ${CI_LIBRARY.name} (required under CI=true on ${process.arch})`, () => {
    assert.match(loadedNative!.description, CI_LIBRARY.pattern, `addon built without ${CI_LIBRARY.name}: ${loadedNative!.description}`);
  });
}

// ---- data helpers ------------------------------------------------------------------------------

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

function uniform(rng: Rng, n: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.uniform();
  return a;
}

function ints(rng: Rng, n: number, lo: number, hi: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + rng.int(hi - lo);
  return a;
}

const copy = (a: Float32Array): Float32Array => new Float32Array(a);

interface Tol {
  rtol?: number;
  atol?: number;
}

/** |actual - expected| <= atol + rtol·|expected| everywhere (NaN must match NaN). */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol: Tol = {}): void {
  const rtol = tol.rtol ?? 1e-4;
  const atol = tol.atol ?? 1e-5;
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === e) continue;
    const bothNaN = Number.isNaN(a) && Number.isNaN(e);
    // (the message is built only on failure: this loop runs over millions of elements)
    if (!bothNaN && !(Math.abs(a - e) <= atol + rtol * Math.abs(e))) assert.fail(`${what}[${i}]: native ${a} vs js ${e}`);
  }
}

function closeNum(a: number, e: number, what: string, rtol = 1e-5): void {
  assert.ok(Math.abs(a - e) <= 1e-6 + rtol * Math.abs(e), `${what}: native ${a} vs js ${e}`);
}

// ---- gemm --------------------------------------------------------------------------------------

interface GemmCase {
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  batch?: number;
  sA?: number;
  sB?: number;
  sC?: number;
  alpha?: number;
  beta?: number;
}

interface GemmFixture {
  c: GemmCase;
  A: Float32Array;
  B: Float32Array;
  C0: Float32Array;
  want: Float32Array;
}

/** Inputs and the js result for a case, computed once and shared by every engine under test. */
function gemmFixture(c: GemmCase, rng: Rng): GemmFixture {
  const batch = c.batch ?? 1;
  const sA = c.sA ?? c.M * c.K;
  const sB = c.sB ?? c.K * c.N;
  const sC = c.sC ?? c.M * c.N;
  const span = (s: number, m: number): number => (m === 0 ? 0 : (batch - 1) * s + m);
  const A = randn(rng, Math.max(1, span(sA, c.M * c.K)));
  const B = randn(rng, Math.max(1, span(sB, c.K * c.N)));
  const C0 = randn(rng, Math.max(1, span(sC, c.M * c.N)));
  if ((c.beta ?? 0) === 0 && !(sC === 0 && batch > 1)) C0.fill(NaN); // beta = 0 must ignore NaN in C
  const want = copy(C0);
  js.gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha ?? 1, A, sA, B, sB, c.beta ?? 0, want, sC, batch);
  return { c, A, B, C0, want };
}

function runGemm(native: HostBackend, f: GemmFixture, label: string): void {
  const { c } = f;
  const batch = c.batch ?? 1;
  const got = copy(f.C0);
  native.gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha ?? 1, f.A, c.sA ?? c.M * c.K, f.B, c.sB ?? c.K * c.N,
    c.beta ?? 0, got, c.sC ?? c.M * c.N, batch);
  // Sums of K unit-normal products: the error grows like sqrt(K).
  const atol = 8e-6 * Math.sqrt(c.K + 1);
  close(got, f.want, `${label} gemm ${c.ta ? 'T' : 'N'}${c.tb ? 'T' : 'N'} ${c.M}x${c.N}x${c.K} b${batch}`, { rtol: 1e-4, atol });
}

let gemmFixtures: GemmFixture[] | null = null;
function allGemmFixtures(): GemmFixture[] {
  if (!gemmFixtures) {
    const rng = new Rng(1);
    gemmFixtures = gemmCases().map((c) => gemmFixture(c, rng));
  }
  return gemmFixtures;
}

const GEMM_SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [3, 5, 7], [17, 9, 33], [1, 64, 50], [40, 1, 30], [32, 128, 784], [128, 784, 32],
  [32, 784, 128], [65, 70, 129], [8, 8, 0],
];

function gemmCases(): GemmCase[] {
  const cases: GemmCase[] = [];
  for (const [M, N, K] of GEMM_SHAPES) {
    for (const ta of [false, true]) for (const tb of [false, true]) cases.push({ ta, tb, M, N, K });
  }
  cases.push(
    { ta: false, tb: true, M: 6, N: 7, K: 5, batch: 3 }, // dense batch
    { ta: true, tb: false, M: 6, N: 7, K: 5, batch: 3, sA: 0 }, // A broadcast
    { ta: false, tb: false, M: 16, N: 16, K: 16, batch: 4, sB: 0 }, // B broadcast (shared weights)
    { ta: false, tb: true, M: 9, N: 4, K: 11, batch: 3, sA: 120, sB: 50, sC: 40 }, // gaps between matrices
    { ta: false, tb: false, M: 5, N: 6, K: 7, batch: 3, sC: 0, beta: 1 }, // all products into one C
    { ta: false, tb: false, M: 5, N: 6, K: 7, batch: 3, sC: 0, beta: 0 },
    { ta: false, tb: false, M: 64, N: 48, K: 40, alpha: 0.5, beta: 1 },
    { ta: true, tb: true, M: 64, N: 48, K: 40, alpha: -2, beta: 0.25 },
    { ta: false, tb: true, M: 3, N: 4, K: 5, alpha: 0, beta: 0.5 },
    { ta: false, tb: false, M: 32, N: 32, K: 32, batch: 8, alpha: 0.125 }, // attention-like
  );
  return cases;
}

describe('native gemm', () => {
  ntest('matches js on every transpose, odd sizes, batch strides, alpha/beta', (native) => {
    for (const f of allGemmFixtures()) runGemm(native, f, 'auto');
  });

  ntest('every compiled-in gemm engine matches js', () => {
    const n = loadedNative!;
    const engines = ['own', 'dnnl', 'dnnl_sgemm', 'cblas'].filter((e) => {
      try {
        internals!.setGemmEngine(e);
        return true;
      } catch {
        return false;
      }
    });
    try {
      assert.ok(engines.includes('own'));
      for (const e of engines) {
        internals!.setGemmEngine(e);
        for (const f of allGemmFixtures()) runGemm(n, f, e);
      }
    } finally {
      internals!.setGemmEngine('auto');
    }
  });

  ntest('a bias row is added to every row of C on every engine (fused by the oneDNN matmul), as js does', () => {
    const n = loadedNative!;
    const rng = new Rng(11);
    const rand = (len: number) => Float32Array.from({ length: len }, () => rng.normal());
    // [M, N, K, batch]: the matmul primitive's shape, a tiny one (own loops), a thin one (dnnl_sgemm), a batch.
    const cases: [number, number, number, number][] = [[37, 29, 23, 1], [2, 3, 4, 1], [3, 40, 17, 1], [5, 6, 7, 3]];
    try {
      for (const engine of ['auto', 'own', 'dnnl']) {
        try {
          internals!.setGemmEngine(engine);
        } catch {
          continue;
        }
        for (const [M, N, K, batch] of cases) {
          const A = rand(batch * M * K);
          const B = rand(N * K);
          const bias = rand(N);
          const want = new Float32Array(batch * M * N);
          js.gemm(false, true, M, N, K, 1, A, M * K, B, 0, 0, want, M * N, batch, bias);
          const got = new Float32Array(batch * M * N).fill(NaN);
          n.gemm(false, true, M, N, K, 1, A, M * K, B, 0, 0, got, M * N, batch, bias);
          close(got, want, `${engine} gemm+bias ${M}x${N}x${K} b${batch}`, { rtol: 1e-4, atol: 1e-4 });
          // js against the definition: the bias lands once per row.
          const plain = new Float32Array(batch * M * N);
          js.gemm(false, true, M, N, K, 1, A, M * K, B, 0, 0, plain, M * N, batch);
          close(want, plain.map((v, i) => v + bias[i % N]), `js gemm+bias ${M}x${N}x${K}`, { rtol: 1e-5, atol: 1e-5 });
        }
      }
    } finally {
      internals!.setGemmEngine('auto');
    }
    const f = new Float32Array(4);
    assert.throws(() => n.gemm(false, false, 2, 2, 1, 1, f, 0, f, 0, 1, f, 0, 1, f), { name: 'RangeError', message: /bias needs beta = 0/ });
    assert.throws(() => n.gemm(false, false, 2, 2, 1, 1, f, 0, f, 0, 0, f, 0, 1, new Float32Array(1)), { name: 'RangeError', message: /'bias' has 1 elements, needs 2/ });
  });

  ntest('beta = 0 ignores NaN in C; C is left alone when M or N is 0', (native) => {
    const C = new Float32Array(6).fill(NaN);
    native.gemm(false, false, 2, 3, 4, 1, new Float32Array(8).fill(1), 0, new Float32Array(12).fill(1), 0, 0, C, 0, 1);
    assert.deepEqual([...C], [4, 4, 4, 4, 4, 4]);
    const D = new Float32Array(2).fill(7);
    native.gemm(false, false, 0, 3, 4, 1, new Float32Array(0), 0, new Float32Array(12), 0, 0, D, 0, 1);
    assert.deepEqual([...D], [7, 7]);
  });

  ntest('refuses float64 and too-short buffers with clear errors', (native) => {
    const f = new Float32Array(4);
    assert.throws(() => native.gemm(false, false, 2, 2, 2, 1, new Float64Array(4), 0, f, 0, 0, f, 0, 1), {
      name: 'TypeError', message: /float32-only/,
    });
    assert.throws(() => native.unary('exp', new Float64Array(4), new Float64Array(4)), { name: 'TypeError', message: /float32-only/ });
    assert.throws(() => native.gemm(false, false, 3, 2, 2, 1, f, 0, f, 0, 0, f, 0, 1), {
      name: 'RangeError', message: /buffer 'A' has 4 elements, needs 6/,
    });
    assert.throws(() => native.embedding(f, new Int32Array([5]), 2, f), { name: 'RangeError', message: /outside the table/ });
    assert.throws(() => xent(native, f, new Int32Array([0, 9]), 2, 2, copy(f)), { name: 'RangeError' });
  });

  ntest('grouped-query attention: k, v sized for bh / groups slices; groups that do not divide bh refused', (native) => {
    const g = { bh: 4, groups: 2, tq: 3, tk: 3, d: 2, dv: 2, scale: 1, causal: true };
    const [q, out, probs] = [new Float32Array(24).fill(0.5), new Float32Array(24), new Float32Array(36)];
    const kv = Float32Array.from({ length: 12 }, (_, i) => i);
    native.attention(g, q, kv, kv, null, out, probs);
    // The first query of a causal slice sees key 0 only: query slices 0, 1 read k/v slice 0, slices 2, 3 slice 1.
    assert.deepEqual([0, 3, 6, 9].map((b) => [...out.subarray(b * 2, b * 2 + 2)]), [[0, 1], [0, 1], [6, 7], [6, 7]]);
    assert.throws(() => native.attention({ ...g, groups: 3 }, q, kv, kv, null, out, probs), { name: 'RangeError', message: /groups must be >= 1 and divide bh/ });
    assert.throws(() => native.attention({ ...g, groups: 1 }, q, kv, kv, null, out, probs), { name: 'RangeError', message: /buffer 'k' has 12 elements, needs 24/ });
  });
});

// ---- elementwise -------------------------------------------------------------------------------

const UNARY_OPS: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'relu', 'gelu', 'geluErf', 'tanh', 'sigmoid', 'abs'];
const BINARY_OPS: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'max', 'min'];

function unaryInput(rng: Rng, op: UnaryOp, n: number): Float32Array {
  return op === 'log' || op === 'sqrt' ? uniform(rng, n, 0.05, 4) : randn(rng, n, 2);
}

describe('native elementwise', () => {
  ntest('unary and unaryBackward (accumulating) match js', (native) => {
    const rng = new Rng(3);
    for (const n of [1, 7, 1000, 70_001]) {
      for (const op of UNARY_OPS) {
        const x = unaryInput(rng, op, n);
        const want = new Float32Array(n);
        const got = new Float32Array(n).fill(NaN);
        js.unary(op, x, want);
        native.unary(op, x, got);
        close(got, want, `unary ${op} n=${n}`, { rtol: 2e-6, atol: 1e-7 });
        const gy = randn(rng, n);
        const gx0 = randn(rng, n);
        const gw = copy(gx0);
        const gg = copy(gx0);
        js.unaryBackward(op, x, want, gy, gw);
        native.unaryBackward(op, x, want, gy, gg);
        close(gg, gw, `unaryBackward ${op} n=${n}`, { rtol: 1e-5, atol: 1e-6 });
      }
    }
  });

  ntest('geluErf keeps its relative precision deep in the lower tail (vectorised erfc)', (native) => {
    // x = -12 gives x·Φ(x) ≈ -2e-32, still a normal float, so relative error is the measure. Rounding
    // the float argument -x/√2 alone costs up to ~6e-8·x² relative (erfc's condition number), for
    // libm's erfcf as for ours; the bound allows that and 1e-6 more.
    const x = Float32Array.from({ length: 1601 }, (_, i) => -12 + i * 0.01);
    // The backward's two terms Φ(x) and x·φ(x) cancel near x = -0.75: its error is relative to their size.
    const size = (v: number, backward: boolean): number =>
      (backward ? 0.5 * erfc(-v / Math.SQRT2) + Math.abs(v) * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI) : Math.abs(v * 0.5 * erfc(-v / Math.SQRT2)));
    const within = (got: Float32Array, want: Float32Array, what: string, backward: boolean): void => {
      for (let i = 0; i < x.length; i++) {
        const tol = (backward ? 2 : 1) * (1e-6 + 1.2e-7 * x[i] * x[i]) * size(x[i], backward);
        if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what} at x=${x[i]}: native ${got[i]} vs js ${want[i]}`);
      }
    };
    const want = new Float32Array(x.length);
    const got = new Float32Array(x.length);
    js.unary('geluErf', x, want);
    native.unary('geluErf', x, got);
    within(got, want, 'geluErf', false);
    const gy = new Float32Array(x.length).fill(1);
    const gw = new Float32Array(x.length);
    const gg = new Float32Array(x.length);
    js.unaryBackward('geluErf', x, want, gy, gw);
    native.unaryBackward('geluErf', x, want, gy, gg);
    within(gg, gw, 'geluErf backward', true);
  });

  ntest('binary with broadcasting strides matches js', (native) => {
    const rng = new Rng(4);
    const cases: Array<{ shape: number[]; aStrides: number[]; bStrides: number[] }> = [
      { shape: [], aStrides: [], bStrides: [] },
      { shape: [13], aStrides: [1], bStrides: [1] },
      { shape: [3, 4, 5], aStrides: [20, 5, 1], bStrides: [20, 5, 1] },
      { shape: [3, 4, 5], aStrides: [20, 5, 1], bStrides: [0, 0, 1] }, // bias over the last axis
      { shape: [3, 4, 5], aStrides: [20, 5, 1], bStrides: [4, 1, 0] }, // column broadcast
      { shape: [3, 4, 5], aStrides: [0, 0, 0], bStrides: [20, 5, 1] }, // scalar a
      { shape: [2, 1, 7], aStrides: [7, 0, 1], bStrides: [0, 0, 1] },
      { shape: [4, 3], aStrides: [1, 4], bStrides: [3, 1] }, // transposed view of a
      { shape: [64, 1024], aStrides: [1024, 1], bStrides: [0, 1] }, // large: exercises threads
      { shape: [300, 400], aStrides: [400, 1], bStrides: [400, 1] }, // coalesces to one long row
      { shape: [100_003], aStrides: [1], bStrides: [0] }, // one long row, scalar b
    ];
    for (const c of cases) {
      const n = c.shape.reduce((p, s) => p * s, 1);
      const extent = (st: number[]): number => 1 + c.shape.reduce((p, s, d) => p + (s - 1) * st[d], 0);
      for (const op of BINARY_OPS) {
        const a = op === 'pow' ? uniform(rng, extent(c.aStrides), 0.1, 3) : randn(rng, extent(c.aStrides));
        const b = op === 'pow' ? uniform(rng, extent(c.bStrides), -2, 2) : randn(rng, extent(c.bStrides));
        if (op === 'div') for (let i = 0; i < b.length; i++) b[i] = b[i] >= 0 ? b[i] + 0.5 : b[i] - 0.5;
        const want = new Float32Array(n);
        const got = new Float32Array(n);
        js.binary(op, a, c.aStrides, b, c.bStrides, want, c.shape);
        native.binary(op, a, c.aStrides, b, c.bStrides, got, c.shape);
        close(got, want, `binary ${op} [${c.shape}]`, { rtol: 1e-6, atol: 1e-7 });
      }
    }
  });

  ntest('affine, powScalar, axpy, addInto, fill, sumSquares match js', (native) => {
    const rng = new Rng(5);
    for (const n of [1, 5, 4097, 70_001]) {
      const x = randn(rng, n);
      const pos = uniform(rng, n, 0.1, 3);
      const w1 = new Float32Array(n);
      const g1 = new Float32Array(n);
      js.affine(x, 1.5, -0.25, w1);
      native.affine(x, 1.5, -0.25, g1);
      close(g1, w1, `affine n=${n}`);
      const inPlace = copy(x);
      native.affine(inPlace, 1.5, -0.25, inPlace);
      close(inPlace, w1, `affine in place n=${n}`);
      for (const p of [2, 3, 0.5, -1.5]) {
        const src = p === 0.5 || p === -1.5 ? pos : x;
        js.powScalar(src, p, w1);
        native.powScalar(src, p, g1);
        close(g1, w1, `powScalar p=${p} n=${n}`, { rtol: 1e-5 });
      }
      const y0 = randn(rng, n);
      const yw = copy(y0);
      const yg = copy(y0);
      js.axpy(-0.75, x, yw);
      native.axpy(-0.75, x, yg);
      close(yg, yw, `axpy n=${n}`);
      const aw = copy(y0);
      const ag = copy(y0);
      js.addInto(aw, x);
      native.addInto(ag, x);
      assert.deepEqual(ag, aw, `addInto n=${n}: the same float32 sums, bit for bit`);
      native.fill(yg, 3.25);
      assert.ok(yg.every((v) => v === 3.25), 'fill');
      closeNum(sumSq(native, x), sumSq(js, x), `sumSquares n=${n}`, 1e-9);
    }
  });
});

// ---- layout ------------------------------------------------------------------------------------

describe('native stridedCopy', () => {
  ntest('transpose, permute, slice, concat, negative strides, accumulate match js', (native) => {
    const rng = new Rng(6);
    const cases: Array<{ shape: number[]; srcOffset: number; srcStrides: number[]; dstOffset: number; dstStrides: number[]; srcLen: number; dstLen: number }> = [
      { shape: [3, 4, 5], srcOffset: 0, srcStrides: [20, 5, 1], dstOffset: 0, dstStrides: [20, 5, 1], srcLen: 60, dstLen: 60 },
      { shape: [4, 3], srcOffset: 0, srcStrides: [1, 4], dstOffset: 0, dstStrides: [3, 1], srcLen: 12, dstLen: 12 }, // transpose
      { shape: [2, 3, 4, 5], srcOffset: 0, srcStrides: [60, 1, 15, 3], dstOffset: 0, dstStrides: [60, 20, 5, 1], srcLen: 120, dstLen: 120 }, // permute
      { shape: [3, 2], srcOffset: 7, srcStrides: [5, 1], dstOffset: 0, dstStrides: [2, 1], srcLen: 30, dstLen: 6 }, // slice
      { shape: [3, 2], srcOffset: 0, srcStrides: [2, 1], dstOffset: 3, dstStrides: [5, 1], srcLen: 6, dstLen: 15 }, // concat part
      { shape: [7], srcOffset: 6, srcStrides: [-1], dstOffset: 0, dstStrides: [1], srcLen: 7, dstLen: 7 }, // flip
      { shape: [], srcOffset: 2, srcStrides: [], dstOffset: 1, dstStrides: [], srcLen: 3, dstLen: 2 },
      { shape: [256, 300], srcOffset: 0, srcStrides: [1, 256], dstOffset: 0, dstStrides: [300, 1], srcLen: 76800, dstLen: 76800 }, // big transpose
      { shape: [150_001], srcOffset: 3, srcStrides: [1], dstOffset: 1, dstStrides: [1], srcLen: 150_004, dstLen: 150_002 }, // one long row
      { shape: [80_000], srcOffset: 0, srcStrides: [2], dstOffset: 0, dstStrides: [1], srcLen: 160_000, dstLen: 80_000 }, // long strided row
      { shape: [4, 5], srcOffset: 0, srcStrides: [5, 1], dstOffset: 2, dstStrides: [0, 1], srcLen: 20, dstLen: 8 }, // rows into one (sum)
    ];
    for (const c of cases) {
      const src = randn(rng, c.srcLen);
      for (const acc of [false, true]) {
        const d0 = randn(rng, c.dstLen);
        const want = copy(d0);
        const got = copy(d0);
        js.stridedCopy(src, c.srcOffset, c.srcStrides, want, c.dstOffset, c.dstStrides, c.shape, acc);
        native.stridedCopy(src, c.srcOffset, c.srcStrides, got, c.dstOffset, c.dstStrides, c.shape, acc);
        close(got, want, `stridedCopy [${c.shape}] acc=${acc}`, { rtol: 0, atol: 0 });
      }
    }
    // A view reaching past the end of a buffer is refused rather than read out of bounds.
    assert.throws(() => native.stridedCopy(new Float32Array(4), 0, [1], new Float32Array(3), 0, [1], [5], false), {
      name: 'RangeError', message: /view of 'src' reaches elements \[0, 4\]/,
    });
  });
});

// ---- reductions ---------------------------------------------------------------------------------

describe('native reductions', () => {
  ntest('reduceSum and reduceMax (first argmax, NaN propagates) match js', (native) => {
    const rng = new Rng(7);
    const dims: Array<[number, number, number]> = [[1, 1, 1], [1, 37, 1], [5, 7, 3], [1, 32, 128], [64, 10, 1], [3, 1, 9], [2, 300, 200], [4, 0, 3]];
    for (const [outer, n, inner] of dims) {
      const x = randn(rng, outer * n * inner);
      const want = new Float32Array(outer * inner);
      const got = new Float32Array(outer * inner).fill(NaN);
      js.reduceSum(x, outer, n, inner, want);
      native.reduceSum(x, outer, n, inner, got);
      close(got, want, `reduceSum ${outer}x${n}x${inner}`, { rtol: 1e-5, atol: 1e-5 });
      if (n === 0) continue;
      const aw = new Int32Array(outer * inner);
      const ag = new Int32Array(outer * inner);
      js.reduceMax(x, outer, n, inner, want, aw);
      native.reduceMax(x, outer, n, inner, got, ag);
      close(got, want, `reduceMax ${outer}x${n}x${inner}`, { rtol: 0, atol: 0 });
      assert.deepEqual([...ag], [...aw], `reduceMax argmax ${outer}x${n}x${inner}`);
    }
    const tie = new Float32Array([1, 3, 3, NaN, 2, 5, 5, 1]);
    const out = new Float32Array(2);
    const arg = new Int32Array(2);
    native.reduceMax(tie, 2, 4, 1, out, arg);
    assert.ok(Number.isNaN(out[0]), 'a NaN in the row wins');
    assert.equal(out[1], 5);
    assert.deepEqual([...arg], [3, 1], 'NaN position; first of tied maxima');
    const jsOut = new Float32Array(2);
    const jsArg = new Int32Array(2);
    js.reduceMax(tie, 2, 4, 1, jsOut, jsArg);
    assert.deepEqual([...arg], [...jsArg]);
  });
});

// ---- softmax family ----------------------------------------------------------------------------

describe('native softmax family', () => {
  ntest('softmax, logSoftmax and their backwards match js', (native) => {
    const rng = new Rng(8);
    for (const [rows, cols] of [[1, 1], [3, 10], [32, 10], [7, 1000], [512, 100]] as Array<[number, number]>) {
      const x = randn(rng, rows * cols, 3);
      const gy = randn(rng, rows * cols);
      for (const [fwd, bwd] of [['softmax', 'softmaxBackward'], ['logSoftmax', 'logSoftmaxBackward']] as const) {
        const yw = new Float32Array(rows * cols);
        const yg = new Float32Array(rows * cols);
        js[fwd](x, rows, cols, yw);
        native[fwd](x, rows, cols, yg);
        close(yg, yw, `${fwd} ${rows}x${cols}`, { rtol: 1e-5, atol: 1e-6 });
        const g0 = randn(rng, rows * cols);
        const gw = copy(g0);
        const gg = copy(g0);
        js[bwd](yw, gy, rows, cols, gw);
        native[bwd](yw, gy, rows, cols, gg);
        close(gg, gw, `${bwd} ${rows}x${cols}`, { rtol: 1e-5, atol: 1e-5 });
      }
    }
  });

  ntest('softmaxCrossEntropy (ignoring label -1) and its backward match js', (native) => {
    const rng = new Rng(9);
    for (const [rows, cols] of [[1, 2], [32, 10], [33, 7], [256, 1000]] as Array<[number, number]>) {
      const logits = randn(rng, rows * cols, 4);
      const labels = ints(rng, rows, 0, cols);
      labels[0] = -1;
      if (rows > 3) labels[3] = -1;
      const pw = new Float32Array(rows * cols);
      const pg = new Float32Array(rows * cols);
      const lw = xent(js, logits, labels, rows, cols, pw);
      const lg = xent(native, logits, labels, rows, cols, pg);
      closeNum(lg, lw, `xent loss ${rows}x${cols}`);
      close(pg, pw, `xent probs ${rows}x${cols}`, { rtol: 1e-5, atol: 1e-7 });
      const g0 = randn(rng, rows * cols);
      const gw = copy(g0);
      const gg = copy(g0);
      js.softmaxCrossEntropyBackward(pw, labels, rows, cols, 1 / rows, gw);
      native.softmaxCrossEntropyBackward(pw, labels, rows, cols, 1 / rows, gg);
      close(gg, gw, `xent backward ${rows}x${cols}`);
      for (let j = 0; j < cols; j++) assert.equal(gg[j], g0[j], 'ignored row gets no gradient');
      // probScale multiplies the stored probabilities (crossEntropy stores probs / rows counted), not the loss.
      const ps = new Float32Array(rows * cols);
      closeNum(xent(native, logits, labels, rows, cols, ps, 0.25), lw, `xent loss, probScale ${rows}x${cols}`);
      close(ps, pw.map((p) => p * 0.25), `xent probs × probScale ${rows}x${cols}`, { rtol: 1e-5, atol: 1e-8 });
    }
    const all = new Int32Array([-1, -1]);
    assert.equal(xent(native, new Float32Array(6), all, 2, 3, new Float32Array(6)), 0);
  });
});

// ---- convolution and pooling -------------------------------------------------------------------

function convGeom(batch: number, inC: number, inH: number, inW: number, outC: number, kH: number, kW: number,
  stride: [number, number], pad: [number, number]): Conv2dGeometry {
  const [strideH, strideW] = stride;
  const [padH, padW] = pad;
  return {
    batch, inC, inH, inW, outC, kH, kW, strideH, strideW, padH, padW,
    outH: Math.floor((inH + 2 * padH - kH) / strideH) + 1,
    outW: Math.floor((inW + 2 * padW - kW) / strideW) + 1,
  };
}

const CONV_CASES: Conv2dGeometry[] = [
  convGeom(4, 1, 28, 28, 32, 3, 3, [1, 1], [1, 1]), // CNN layer 1
  convGeom(4, 32, 14, 14, 64, 3, 3, [1, 1], [1, 1]), // CNN layer 2
  convGeom(3, 3, 11, 9, 8, 5, 5, [2, 2], [2, 2]), // stride 2, odd sizes
  convGeom(2, 5, 10, 12, 7, 3, 2, [2, 1], [1, 0]), // non-square kernel and stride
  convGeom(2, 16, 7, 7, 24, 1, 1, [1, 1], [0, 0]), // pointwise
  convGeom(2, 8, 9, 9, 16, 3, 3, [3, 3], [0, 0]), // stride 3, floor drops a column
  convGeom(1, 2, 4, 4, 3, 4, 4, [1, 1], [0, 0]), // kernel = image
  convGeom(3, 16, 9, 7, 24, 3, 3, [1, 1], [1, 1]), // 3×3 stride 1, 16+ channels: Winograd in auto
  convGeom(2, 32, 4, 4, 32, 3, 3, [1, 1], [1, 1]), // ResNet's last stage in miniature (one 4×4 tile)
];

interface ConvFixture {
  g: Conv2dGeometry;
  x: Float32Array;
  w: Float32Array;
  bias: Float32Array;
  gy: Float32Array;
  gx0: Float32Array;
  gw0: Float32Array;
  gb0: Float32Array;
  /** js results keyed by `${withBias}`: forward y, and gx, gw, gBias after accumulating. */
  want: Map<string, { y: Float32Array; gx: Float32Array; gw: Float32Array; gb: Float32Array }>;
}

function convFixture(g: Conv2dGeometry, rng: Rng): ConvFixture {
  const xs = g.batch * g.inC * g.inH * g.inW;
  const ws = g.outC * g.inC * g.kH * g.kW;
  const ys = g.batch * g.outC * g.outH * g.outW;
  return {
    g, x: randn(rng, xs), w: randn(rng, ws, 0.5), bias: randn(rng, g.outC), gy: randn(rng, ys),
    gx0: randn(rng, xs), gw0: randn(rng, ws), gb0: randn(rng, g.outC), want: new Map(),
  };
}

function convWant(f: ConvFixture, withBias: boolean): { y: Float32Array; gx: Float32Array; gw: Float32Array; gb: Float32Array } {
  const key = String(withBias);
  let r = f.want.get(key);
  if (!r) {
    const g = f.g;
    r = { y: new Float32Array(g.batch * g.outC * g.outH * g.outW), gx: copy(f.gx0), gw: copy(f.gw0), gb: copy(f.gb0) };
    js.conv2d(g, f.x, f.w, withBias ? f.bias : null, r.y);
    js.conv2dBackward(g, f.x, f.w, f.gy, r.gx, r.gw, withBias ? r.gb : null);
    f.want.set(key, r);
  }
  return r;
}

function runConv(native: HostBackend, f: ConvFixture, label: string, withBias: boolean, withGx: boolean): void {
  const g = f.g;
  const want = convWant(f, withBias);
  const got = new Float32Array(want.y.length).fill(NaN);
  native.conv2d(g, f.x, f.w, withBias ? f.bias : null, got);
  const k = g.inC * g.kH * g.kW;
  const tol = { rtol: 1e-4, atol: 4e-5 * Math.sqrt(k) };
  const name = `${label} conv [${g.batch},${g.inC},${g.inH},${g.inW}]→${g.outC} k${g.kH}x${g.kW} s${g.strideH},${g.strideW} p${g.padH},${g.padW}`;
  close(got, want.y, `${name} forward`, tol);
  const gx = withGx ? copy(f.gx0) : null;
  const gw = copy(f.gw0);
  const gb = withBias ? copy(f.gb0) : null;
  native.conv2dBackward(g, f.x, f.w, f.gy, gx, gw, gb);
  const m = g.batch * g.outH * g.outW;
  if (gx) close(gx, want.gx, `${name} gx`, tol);
  close(gw, want.gw, `${name} gw`, { rtol: 1e-4, atol: 4e-5 * Math.sqrt(m) });
  if (gb) close(gb, want.gb, `${name} gBias`, { rtol: 1e-4, atol: 4e-5 * Math.sqrt(m) });
  if (!withGx) return;
  // setGx: gx is overwritten, so NaN in it must not survive (gw still accumulates: want.gw again).
  const [setW, setG] = [new Float32Array(f.gx0.length).fill(NaN), new Float32Array(f.gx0.length).fill(NaN)];
  const gwSet = copy(f.gw0);
  js.conv2dBackward(g, f.x, f.w, f.gy, setW, new Float32Array(f.gw0.length), null, true);
  native.conv2dBackward(g, f.x, f.w, f.gy, setG, gwSet, null, true);
  close(setG, setW, `${name} gx set`, tol);
  close(setW, want.gx.map((v, i) => v - f.gx0[i]), `${name} js gx set`, tol);
  close(gwSet, want.gw, `${name} gw beside gx set`, { rtol: 1e-4, atol: 4e-5 * Math.sqrt(m) });
}

let convFixtures: ConvFixture[] | null = null;
function allConvFixtures(): ConvFixture[] {
  if (!convFixtures) {
    const rng = new Rng(10);
    convFixtures = CONV_CASES.map((g) => convFixture(g, rng));
  }
  return convFixtures;
}

function poolGeom(batch: number, channels: number, inH: number, inW: number, k: [number, number],
  stride: [number, number], pad: [number, number]): Pool2dGeometry {
  return {
    batch, channels, inH, inW, kH: k[0], kW: k[1], strideH: stride[0], strideW: stride[1], padH: pad[0], padW: pad[1],
    outH: Math.floor((inH + 2 * pad[0] - k[0]) / stride[0]) + 1,
    outW: Math.floor((inW + 2 * pad[1] - k[1]) / stride[1]) + 1,
  };
}

const POOL_CASES: Pool2dGeometry[] = [
  poolGeom(8, 32, 28, 28, [2, 2], [2, 2], [0, 0]), // CNN pooling
  poolGeom(4, 64, 14, 14, [2, 2], [2, 2], [0, 0]), // CNN second pooling: 7 outputs a row (four lanes, one overlapping block)
  poolGeom(1, 3, 10, 11, [2, 2], [2, 2], [0, 0]), // 5 outputs a row, odd width: the last column in no window
  poolGeom(2, 3, 9, 11, [3, 3], [2, 2], [1, 1]), // ResNet-style stem, odd sizes
  poolGeom(2, 4, 7, 7, [3, 3], [1, 1], [1, 1]), // overlapping windows
  poolGeom(1, 2, 5, 8, [2, 3], [1, 2], [1, 1]), // non-square
  poolGeom(1, 1, 6, 6, [6, 6], [1, 1], [0, 0]), // global
  poolGeom(2, 3, 8, 8, [2, 2], [2, 2], [1, 1]), // padded 2×2 (not the fast path)
  poolGeom(1, 2, 7, 9, [2, 2], [2, 2], [0, 0]), // odd size: the last row/column is dropped
  poolGeom(2, 3, 6, 35, [2, 2], [2, 2], [0, 0]), // 17 outputs a row: SIMD blocks plus an overlapping one
];

function runPool(native: HostBackend, g: Pool2dGeometry, rng: Rng, engine: string): void {
  const xs = g.batch * g.channels * g.inH * g.inW;
  const ys = g.batch * g.channels * g.outH * g.outW;
  const label = `${engine} pool [${g.batch},${g.channels},${g.inH},${g.inW}] k${g.kH}x${g.kW} s${g.strideH},${g.strideW} p${g.padH},${g.padW}`;
  const x = randn(rng, xs);
  const yw = new Float32Array(ys);
  const yg = new Float32Array(ys);
  const aw = new Int32Array(ys);
  const ag = new Int32Array(ys);
  js.maxPool2d(g, x, yw, aw);
  native.maxPool2d(g, x, yg, ag);
  close(yg, yw, `${label} max`, { rtol: 0, atol: 0 });
  assert.deepEqual([...ag], [...aw], `${label} argmax`);
  // Fused ReLU: the same cells pooled after relu, no gradient (argmax -1) where the maximum is 0.
  const rw = new Float32Array(ys);
  const rg = new Float32Array(ys);
  const raw = new Int32Array(ys);
  const rag = new Int32Array(ys);
  js.maxPool2dRelu(g, x, rw, raw);
  native.maxPool2dRelu(g, x, rg, rag);
  close(rg, rw, `${label} max relu`, { rtol: 0, atol: 0 });
  assert.deepEqual([...rag], [...raw], `${label} relu argmax`);
  for (let i = 0; i < ys; i++) assert.equal(rw[i], Math.max(yw[i], 0), `${label} relu value ${i}`);
  const gy = randn(rng, ys);
  const gx0 = randn(rng, xs);
  const gw = copy(gx0);
  const gg = copy(gx0);
  js.maxPool2dBackward(g, gy, aw, gw);
  native.maxPool2dBackward(g, gy, ag, gg);
  close(gg, gw, `${label} max backward`, { rtol: 1e-6, atol: 1e-6 });
  // The writing backward: every cell set (a NaN-filled buffer comes out clean), as zero + accumulate.
  for (const [argmax, name] of [[ag, 'max'], [rag, 'max relu']] as const) {
    const want = new Float32Array(xs);
    js.maxPool2dBackward(g, gy, argmax, want);
    const set = new Float32Array(xs).fill(NaN);
    native.maxPool2dBackwardSet(g, gy, argmax, set);
    close(set, want, `${label} ${name} backward set`, { rtol: 0, atol: 0 });
    const jset = new Float32Array(xs).fill(NaN);
    js.maxPool2dBackwardSet(g, gy, argmax, jset);
    close(jset, want, `${label} ${name} js backward set`, { rtol: 0, atol: 0 });
  }
  js.avgPool2d(g, x, yw);
  native.avgPool2d(g, x, yg);
  close(yg, yw, `${label} avg`, { rtol: 1e-5, atol: 1e-6 });
  const hw = copy(gx0);
  const hg = copy(gx0);
  js.avgPool2dBackward(g, gy, hw);
  native.avgPool2dBackward(g, gy, hg);
  close(hg, hw, `${label} avg backward`, { rtol: 1e-5, atol: 1e-6 });
}

describe('native convolution and pooling', () => {
  ntest('conv2d and conv2dBackward (accumulating; null bias / gx) match js', (native) => {
    allConvFixtures().forEach((f, i) => runConv(native, f, 'auto', i % 2 === 0, i % 3 !== 1));
  });

  ntest('every compiled-in convolution engine matches js', (native) => {
    const engines = ['im2col', 'dnnl-plain', 'dnnl-blocked', 'dnnl-winograd'].filter((e) => {
      try {
        internals!.setConvEngine(e);
        return true;
      } catch {
        return false;
      }
    });
    try {
      assert.ok(engines.includes('im2col'));
      for (const e of engines) {
        internals!.setConvEngine(e);
        allConvFixtures().forEach((f, i) => runConv(native, f, e, i % 2 === 1, true));
      }
    } finally {
      internals!.setConvEngine('auto');
    }
  });

  ntest('maxPool2d (flat argmax, -inf padding) and avgPool2d (count_include_pad) match js', (native) => {
    try {
      for (const engine of ['auto', 'own']) {
        internals!.setPoolEngine(engine);
        const rng = new Rng(12);
        for (const g of POOL_CASES) runPool(native, g, rng, engine);
      }
    } finally {
      internals!.setPoolEngine('auto');
    }
  });

  ntest('maxPool2d ties pick the first cell in scan order; NaN propagates', (native) => {
    const g = poolGeom(1, 1, 4, 4, [2, 2], [2, 2], [0, 0]);
    const x = new Float32Array([0, 0, 1, 1, 0, 0, 1, 1, NaN, 2, 5, 5, 3, NaN, 5, 5]);
    const y = new Float32Array(4);
    const arg = new Int32Array(4);
    native.maxPool2d(g, x, y, arg);
    assert.deepEqual([...arg], [0, 2, 8, 10]);
    assert.ok(Number.isNaN(y[2]));
    const wide = poolGeom(1, 1, 2, 16, [2, 2], [2, 2], [0, 0]); // one SIMD block of ties
    const wy = new Float32Array(8);
    const wa = new Int32Array(8);
    native.maxPool2d(wide, new Float32Array(32), wy, wa);
    assert.deepEqual([...wa], [0, 2, 4, 6, 8, 10, 12, 14]);
    const g3 = poolGeom(1, 1, 3, 3, [3, 3], [1, 1], [1, 1]);
    const z = new Float32Array(9); // all zeros: every window ties
    const y3 = new Float32Array(9);
    const a3 = new Int32Array(9);
    const jy = new Float32Array(9);
    const ja = new Int32Array(9);
    native.maxPool2d(g3, z, y3, a3);
    js.maxPool2d(g3, z, jy, ja);
    assert.deepEqual([...a3], [...ja]);
  });

  ntest('maxPool2dRelu: relu as the relu kernel (NaN → 0), argmax -1 where the window maximum is 0', (native) => {
    const g = poolGeom(1, 1, 4, 4, [2, 2], [2, 2], [0, 0]);
    const x = new Float32Array([-1, -2, 0, -3, -4, -5, 0, 1, NaN, 2, NaN, -1, 3, NaN, -2, 0]);
    for (const backend of [native, js]) {
      const y = new Float32Array(4);
      const arg = new Int32Array(4);
      backend.maxPool2dRelu(g, x, y, arg);
      assert.deepEqual([...y], [0, 1, 3, 0]);
      assert.deepEqual([...arg], [-1, 7, 12, -1]);
      const wide = poolGeom(1, 1, 2, 16, [2, 2], [2, 2], [0, 0]); // one SIMD block
      const xw = Float32Array.from({ length: 32 }, (_, i) => (i % 3 === 0 ? -i : i % 5) - 1);
      const wy = new Float32Array(8);
      const wa = new Int32Array(8);
      const py = new Float32Array(8);
      const pa = new Int32Array(8);
      backend.maxPool2dRelu(wide, xw, wy, wa);
      js.maxPool2d(wide, xw.map((v) => (v > 0 ? v : 0)), py, pa);
      assert.deepEqual([...wy], [...py]);
      assert.deepEqual([...wa], [...pa].map((a, i) => (py[i] > 0 ? a : -1)));
    }
  });
});

describe('native normalisation', () => {
  ntest('batchNorm (train and eval, running stats) and its backward match js', (native) => {
    const rng = new Rng(13);
    // [4, 3, 50] sits far from 0 (mean 300, spread 2): the one-pass shifted statistics must hold there too.
    for (const [outer, C, inner] of [[8, 4, 9], [32, 16, 1], [2, 3, 1000], [1, 5, 1], [16, 32, 196], [4, 3, 50]] as Array<[number, number, number]>) {
      const n = outer * C * inner;
      const x = randn(rng, n, 2);
      const offset = inner === 50 ? 300 : 1.5;
      for (let i = 0; i < n; i++) x[i] += offset;
      const gamma = uniform(rng, C, 0.5, 1.5);
      const beta = randn(rng, C);
      for (const training of [true, false]) {
        const rm = randn(rng, C);
        const rv = uniform(rng, C, 0.5, 2);
        const [rmw, rvw, rmg, rvg] = [copy(rm), copy(rv), copy(rm), copy(rv)];
        const [yw, yg] = [new Float32Array(n), new Float32Array(n)];
        const [mw, mg, sw, sg] = [new Float32Array(C), new Float32Array(C), new Float32Array(C), new Float32Array(C)];
        js.batchNorm(x, outer, C, inner, gamma, beta, rmw, rvw, training, 0.1, 1e-5, yw, mw, sw);
        native.batchNorm(x, outer, C, inner, gamma, beta, rmg, rvg, training, 0.1, 1e-5, yg, mg, sg);
        const label = `batchNorm ${outer}x${C}x${inner} training=${training}`;
        close(yg, yw, label, { rtol: 1e-4, atol: 1e-4 });
        close(mg, mw, `${label} mean`, { rtol: 1e-5, atol: 1e-6 });
        close(sg, sw, `${label} invStd`, { rtol: 1e-5 });
        close(rmg, rmw, `${label} runningMean`, { rtol: 1e-5, atol: 1e-6 });
        close(rvg, rvw, `${label} runningVar`, { rtol: 1e-5 });
        if (!training) continue;
        const gy = randn(rng, n);
        const gxw = randn(rng, n);
        const gxg = copy(gxw);
        const gG0 = randn(rng, C);
        const gB0 = randn(rng, C);
        const [gGw, gGg, gBw, gBg] = [copy(gG0), copy(gG0), copy(gB0), copy(gB0)];
        js.batchNormBackward(x, outer, C, inner, gamma, mw, sw, gy, gxw, gGw, gBw);
        native.batchNormBackward(x, outer, C, inner, gamma, mw, sw, gy, gxg, gGg, gBg);
        // setGx overwrites gx: NaN in it must not survive; the result is the accumulated one minus gx0.
        const [setW, setG] = [new Float32Array(n).fill(NaN), new Float32Array(n).fill(NaN)];
        js.batchNormBackward(x, outer, C, inner, gamma, mw, sw, gy, setW, new Float32Array(C), new Float32Array(C), true);
        native.batchNormBackward(x, outer, C, inner, gamma, mw, sw, gy, setG, new Float32Array(C), new Float32Array(C), true);
        close(setG, setW, `${label} gx set`, { rtol: 1e-3, atol: 1e-4 });
        // Fused relu: the forward clamps, the backward masks gy by the clamped output.
        const [ryw, ryg] = [new Float32Array(n), new Float32Array(n)];
        const c4 = (): Float32Array[] => [copy(rm), copy(rv), new Float32Array(C), new Float32Array(C)];
        const [a1, a2, a3, a4] = c4();
        const [b1, b2, b3, b4] = c4();
        js.batchNorm(x, outer, C, inner, gamma, beta, a1, a2, true, 0.1, 1e-5, ryw, a3, a4, true);
        native.batchNorm(x, outer, C, inner, gamma, beta, b1, b2, true, 0.1, 1e-5, ryg, b3, b4, true);
        close(ryg, ryw, `${label} relu`, { rtol: 1e-4, atol: 1e-4 });
        const [rgw, rgg] = [copy(gxw), copy(gxw)];
        js.batchNormBackward(x, outer, C, inner, gamma, mw, sw, gy, rgw, new Float32Array(C), new Float32Array(C), false, ryw);
        native.batchNormBackward(x, outer, C, inner, gamma, mw, sw, gy, rgg, new Float32Array(C), new Float32Array(C), false, ryw);
        close(rgg, rgw, `${label} relu backward`, { rtol: 1e-3, atol: 1e-4 });
        close(gxg, gxw, `${label} gx`, { rtol: 1e-3, atol: 1e-4 });
        close(gGg, gGw, `${label} gGamma`, { rtol: 1e-4, atol: 1e-4 });
        close(gBg, gBw, `${label} gBeta`, { rtol: 1e-4, atol: 1e-4 });
      }
    }
  });

  ntest('layerNorm and its backward match js', (native) => {
    const rng = new Rng(14);
    for (const [rows, cols] of [[1, 1], [4, 7], [32, 128], [300, 64], [3, 1000]] as Array<[number, number]>) {
      const n = rows * cols;
      const x = randn(rng, n, 3);
      const gamma = uniform(rng, cols, 0.5, 1.5);
      const beta = randn(rng, cols);
      const [yw, yg] = [new Float32Array(n), new Float32Array(n)];
      const [mw, mg, sw, sg] = [new Float32Array(rows), new Float32Array(rows), new Float32Array(rows), new Float32Array(rows)];
      js.layerNorm(x, rows, cols, gamma, beta, 1e-5, yw, mw, sw);
      native.layerNorm(x, rows, cols, gamma, beta, 1e-5, yg, mg, sg);
      const label = `layerNorm ${rows}x${cols}`;
      close(yg, yw, label, { rtol: 1e-4, atol: 1e-4 });
      close(mg, mw, `${label} mean`, { rtol: 1e-5, atol: 1e-6 });
      close(sg, sw, `${label} invStd`, { rtol: 1e-4 });
      const gy = randn(rng, n);
      const gx0 = randn(rng, n);
      const gG0 = randn(rng, cols);
      const gB0 = randn(rng, cols);
      const [gxw, gxg, gGw, gGg, gBw, gBg] = [copy(gx0), copy(gx0), copy(gG0), copy(gG0), copy(gB0), copy(gB0)];
      js.layerNormBackward(x, rows, cols, gamma, mw, sw, gy, gxw, gGw, gBw);
      native.layerNormBackward(x, rows, cols, gamma, mw, sw, gy, gxg, gGg, gBg);
      close(gxg, gxw, `${label} gx`, { rtol: 1e-3, atol: 1e-4 });
      close(gGg, gGw, `${label} gGamma`, { rtol: 1e-4, atol: 1e-4 });
      close(gBg, gBw, `${label} gBeta`, { rtol: 1e-4, atol: 1e-4 });
    }
  });
});

// ---- embedding and optimizers -------------------------------------------------------------------

describe('native embedding and optimizers', () => {
  ntest('embedding and embeddingBackward (repeated ids accumulate) match js', (native) => {
    const rng = new Rng(15);
    for (const [vocab, dim, count] of [[10, 1, 5], [50, 16, 64], [1000, 384, 300]] as Array<[number, number, number]>) {
      const table = randn(rng, vocab * dim);
      const ids = ints(rng, count, 0, vocab);
      ids[0] = ids[count - 1]; // a repeat
      const [ow, og] = [new Float32Array(count * dim), new Float32Array(count * dim)];
      js.embedding(table, ids, dim, ow);
      native.embedding(table, ids, dim, og);
      close(og, ow, `embedding ${vocab}x${dim}`, { rtol: 0, atol: 0 });
      const gy = randn(rng, count * dim);
      const g0 = randn(rng, vocab * dim);
      const [gw, gg] = [copy(g0), copy(g0)];
      js.embeddingBackward(gy, ids, dim, gw);
      native.embeddingBackward(gy, ids, dim, gg);
      close(gg, gw, `embeddingBackward ${vocab}x${dim}`, { rtol: 1e-6, atol: 1e-6 });
    }
  });

  ntest('sgdStep (plain, momentum, nesterov, dampening, weight decay) matches js', (native) => {
    const rng = new Rng(16);
    const hypers = [
      { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
      { lr: 0.05, momentum: 0, dampening: 0, weightDecay: 1e-2, nesterov: false },
      { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false },
      { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: true },
      { lr: 0.01, momentum: 0.8, dampening: 0.3, weightDecay: 5e-4, nesterov: false },
    ];
    for (const n of [3, 1001, 70_001]) {
      for (const h of hypers) {
        const p0 = randn(rng, n);
        const [pw, pg] = [copy(p0), copy(p0)];
        const withBuf = h.momentum !== 0;
        const [bw, bg] = withBuf ? [new Float32Array(n), new Float32Array(n)] : [null, null];
        for (let step = 0; step < 3; step++) {
          const g = randn(rng, n);
          const hyper = { ...h, firstStep: step === 0 };
          js.sgdStep(pw, g, bw, hyper);
          native.sgdStep(pg, g, bg, hyper);
        }
        close(pg, pw, `sgd n=${n} ${JSON.stringify(h)}`, { rtol: 1e-5, atol: 1e-6 });
        if (bw && bg) close(bg, bw, `sgd buffer n=${n}`, { rtol: 1e-5, atol: 1e-6 });
      }
    }
  });

  ntest('adamStep (Adam with L2, AdamW decoupled) matches js', (native) => {
    const rng = new Rng(17);
    for (const n of [5, 1001, 70_001]) {
      for (const decoupled of [false, true]) {
        const p0 = randn(rng, n);
        const [pw, pg] = [copy(p0), copy(p0)];
        const [mw, mg, vw, vg] = [new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n)];
        for (let step = 1; step <= 4; step++) {
          const g = randn(rng, n);
          const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled, step };
          js.adamStep(pw, g, mw, vw, h);
          native.adamStep(pg, g, mg, vg, h);
        }
        close(pg, pw, `adam n=${n} decoupled=${decoupled}`, { rtol: 1e-5, atol: 1e-6 });
        close(mg, mw, `adam m n=${n}`, { rtol: 1e-5, atol: 1e-7 });
        close(vg, vw, `adam v n=${n}`, { rtol: 1e-4, atol: 1e-9 });
      }
    }
  });
});

// ---- threads -----------------------------------------------------------------------------------

describe('native threads', () => {
  ntest('setThreads sets the count; two threads agree with one', (native) => {
    const before = native.getThreads();
    try {
      native.setThreads(1);
      assert.equal(native.getThreads(), 1);
      assert.throws(() => native.setThreads(0), { name: 'RangeError' });
      const snapshot = (): Float32Array[] => {
        const r = new Rng(19);
        const g = convGeom(8, 16, 16, 16, 32, 3, 3, [1, 1], [1, 1]);
        const x = randn(r, 8 * 16 * 16 * 16);
        const w = randn(r, 32 * 16 * 9, 0.3);
        const y = new Float32Array(8 * 32 * 16 * 16);
        native.conv2d(g, x, w, null, y);
        const A = randn(r, 256 * 784);
        const B = randn(r, 784 * 128);
        const C = new Float32Array(256 * 128);
        native.gemm(false, false, 256, 128, 784, 1, A, 0, B, 0, 0, C, 0, 1);
        const e = new Float32Array(300_000);
        native.unary('exp', randn(r, 300_000), e);
        const s = new Float32Array(600 * 5);
        native.reduceSum(randn(r, 600 * 500 * 5), 600, 500, 5, s);
        return [y, C, e, s];
      };
      const one = snapshot();
      native.setThreads(2);
      assert.equal(native.getThreads(), 2);
      const two = snapshot();
      one.forEach((a, i) => close(two[i], a, `threads 2 vs 1 (#${i})`, { rtol: 1e-4, atol: 1e-3 }));
    } finally {
      native.setThreads(before);
    }
  });
});
