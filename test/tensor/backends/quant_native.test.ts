/**
 * The native quant kernels (src/native/quant_linear.cc, quant_dot*.cc, quant_dequant.cc) against the
 * js reference (src/tensor/backends/js/quant.ts: W's rows dequantized exactly as gguf-py does, every
 * product summed in float64), for every format:
 *  - dequantize and embedding: bit for bit (denormal flushing off, as the js arithmetic has none);
 *  - x's quantization per block of 32 (every integer path's): codes, scales and half-block sums bit for
 *    bit against the same float32 steps in js;
 *  - quantLinear at M = 1, 3, 8, 16: the integer path (16 rows: two passes of 8 over W) on x quantized per 32 values (d_x = max|x|/127,
 *    q = round(x/d_x), so each x's error is at most d_x/2). Its result is Σ ŵ·x̂ up to float32
 *    rounding, so against the exact Σ ŵ·x:
 *        |Δy| ≤ Σ_blocks (d_x/2)·Σ_block |ŵ|  +  R,    R = 2^-20·Σ (|ŵ| + S_block)·|x|  (float32 slack)
 *    with S_block the block's largest |ŵ| (its scales' and offsets' magnitude) and, for mlx8, 256·|s|
 *    besides: the kernel takes its codes as q − 128 and moves 128·s into the offset (quant_blocks.h),
 *    whose cancellation rounds at that magnitude;
 *    a worst case; and, the errors x − x̂ being independent and uniform on [−d_x/2, d_x/2] for these
 *    gaussian x, also within six standard deviations: |Δy| ≤ 6·sqrt(Σ ŵ²·d_x²/12) + R. The second
 *    is tight: the test checks that a kernel dropping one block of 32 would break it.
 *  - quantLinear at M = 40 (dequantized tiles + fp32 GEMM) and the input gradient: an fp32 GEMM's
 *    bound, |Δ| ≤ (K + 2)·2^-24·Σ|products| (recursive summation's γ_K plus the output's rounding).
 *  - under a bf16 step, the tiles over bf16-rounded operands and the bf16 GEMM: the same bound over
 *    the rounded operands (float32 products of bf16 values are exact).
 *  - nf4, whose levels are not integers, and f16, whose values are floats, have no integer path: their
 *    quantLinear takes the tiles + GEMM at every M (setQuantPath("dot") too), within that same bound;
 *    f16 at up to 8 rows of x under "auto" widens W where it reads it (the same bound: float32 sums).
 * And the path that ran, keyed to this process's CPU table (the SMOLCLUSTER_CPU cap included, so
 * scripts/cpu-levels.sh and scripts/arm64-check.sh run the lower paths): avx512-vnni where the
 * table has AVX512-VNNI, avx2 with AVX2, neon-dotprod with DotProd, generic otherwise.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getKernel } from '../../../src/tensor/kernel_registry.js';
import { quantKernelsFor, registeredBackends, setBackend } from '../../../src/tensor/dispatch.js';
import { rounded as roundedThroughBf16 } from '../../../src/tensor/backends/js/bf16.js';
import { jsQuantKernels } from '../../../src/tensor/backends/js/quant.js';
import { loadNativeBackend, nativeCpuTable, nativeInternals } from '../../../src/tensor/backends/native.js';
import { QUANT_TYPES, type QuantType, dequantizeRows, quantBytes, quantFormat, quantizeRows } from '../../../src/tensor/quant/formats.js';
import { readBf16, readF16 } from '../../../src/tensor/quant/half.js';
import type { QuantKernels } from '../../../src/tensor/quant/kernels.js';
import type { DeviceBuffer } from '../../../src/tensor/storage.js';
import { fromF16Bits } from '../../../src/util/float_formats.js';
import { Rng } from '../../../src/util/rng.js';
import { ROWS8_OF } from '../../../src/tensor/quant/rows8.js';

const loaded = loadNativeBackend();
const skip = loaded.backend ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;
const cpu = nativeCpuTable();

/** The formats without integer codes (quant_blocks.h qIntegerCodes): nf4's levels, f16's floats. */
const FLOAT_CODED_TYPES: readonly QuantType[] = ['nf4', 'f16'];
/** The formats with an integer path: all the others. */
// The interleaved formats' rows come eight to a group (tensor/quant/rows8.ts): their own tests take whole groups.
const ROW_TYPES = QUANT_TYPES.filter((t) => !Object.hasOwn(ROWS8_OF, t));
const INTEGER_TYPES = ROW_TYPES.filter((t) => !FLOAT_CODED_TYPES.includes(t));
/** The formats quantLinear multiplies as integer tiles at inference on this CPU (quant_tiles_int8*.cc): every integer one with AVX512-VNNI or DotProd. */
const INT8_TILE_TYPES: readonly QuantType[] = ['avx512-vnni', 'neon-dotprod'].includes(expectedDotPath()) ? INTEGER_TYPES : [];
/** What quantLinear takes unforced at inference for M rows of x: the integer tiles from 12 rows (x86's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: their 512-bit rows kernel first), 16 (x86's MLX8) or 8 (the rest), else the integer rows. */
function expectedIntegerPath(type: QuantType, M: number): string {
  const x64From: Partial<Record<QuantType, number>> = { q8_0: 12, q4_0: 12, q4_1: 12, q5_0: 12, q5_1: 12, mlx8: 16, mlx8_f16: 16 };
  const from = (cpu?.arch === 'x64' ? x64From[type] : undefined) ?? 8;
  return INT8_TILE_TYPES.includes(type) && M >= from ? 'int8-tiles' : expectedDotPath();
}

/** The integer kernel this process's CPU table selects (quant_linear.cc dotKernel). */
function expectedDotPath(): string {
  if (!cpu) return 'none';
  const f = cpu.features;
  if (cpu.arch === 'x64') return f.avx512 && f.avx512vnni ? 'avx512-vnni' : f.avx2 ? 'avx2' : 'generic';
  return f.dotprod ? 'neon-dotprod' : 'generic';
}

const f32 = Math.fround;

function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** K for a format: 896 (Qwen2.5's hidden size: not whole 256s) where blocks allow, else two super-blocks. */
const colsOf = (type: QuantType): number => (quantFormat(type).blockWeights === 256 ? 512 : 896);

/**
 * An [N, K] weight in `type` from values with edge rows: row 0 all zeros, row 1 with outliers (×100
 * every 37th), row 2 tiny (×1e-4: float16 scales in the subnormal range), the rest gaussian.
 */
function weight(type: QuantType, N: number, K: number, seed: number): { bytes: Uint8Array; dense: Float32Array } {
  const v = gaussian(N * K, seed, 0.05);
  v.fill(0, 0, K);
  for (let k = 0; k < K; k += 37) v[K + k] *= 100;
  for (let k = 0; k < K; k++) v[2 * K + k] *= 1e-4;
  const bytes = quantizeRows(type, v, K);
  const dense = new Float32Array(N * K);
  dequantizeRows(type, bytes, K, 0, N, dense);
  return { bytes, dense };
}

const buf = (a: ArrayBufferView | null): DeviceBuffer => a as unknown as DeviceBuffer;

function nativeKernels(type: QuantType): QuantKernels<DeviceBuffer> {
  return quantKernelsFor({ device: 'cpu', dtype: type });
}

/** Same value, NaN counted equal to NaN (random bytes make NaN and infinite scales). */
function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i]))) continue;
    assert.fail(`${what}: [${i}] native ${a[i]} vs js ${b[i]}`);
  }
}

/**
 * quantLinear of `type` at M × N (W, x and the bias drawn from seeds `seed`, +1, +2; `exact`: as a
 * training step's) on two threads, then on one: y each, and the path the two-thread call took. The thread count is restored after.
 */
function onTwoThreadsThenOne(type: QuantType, M: number, N: number, seed: number, exact = false): { two: Float32Array; twoPath: string; one: Float32Array } {
  const host = loaded.backend!;
  const before = host.getThreads();
  const K = colsOf(type);
  const { bytes } = weight(type, N, K, seed);
  const x = gaussian(M * K, seed + 1);
  const bias = gaussian(N, seed + 2);
  const run = (threads: number): Float32Array => {
    host.setThreads(threads);
    const y = new Float32Array(M * N).fill(NaN);
    nativeKernels(type).quantLinear(buf(bytes), buf(x), M, N, K, buf(y), buf(bias), exact);
    return y;
  };
  try {
    const two = run(2);
    const twoPath = nativeInternals()!.lastQuantImpl();
    return { two, twoPath, one: run(1) };
  } finally {
    host.setThreads(before);
  }
}

/** A float32 value rounded to the nearest integer, ties to even (the native quantizer's rounding). */
function roundHalfEven(v: number): number {
  return Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v);
}

/**
 * x quantized per block of 32 as quant_linear.cc quantizeBlock32 defines it, every step one float32
 * rounding: d = amax/127 (NaN where the block holds an infinity or NaN), codes x·(1/d) to nearest-even
 * clamped to ±127 (a NaN product to −127), and d·Σq per half block.
 */
function quantizedActivations(x: Float32Array): { q: Int8Array; d: Float32Array; s: Float32Array } {
  const blocks = x.length / 32;
  const q = new Int8Array(x.length), d = new Float32Array(blocks), s = new Float32Array(2 * blocks);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    let bad = false;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[32 * b + j]);
      if (!(a <= 3.4028234663852886e38)) bad = true;
      else amax = Math.max(amax, a);
    }
    d[b] = bad ? NaN : f32(amax / 127);
    const id = !bad && d[b] !== 0 ? f32(1 / d[b]) : 0;
    for (let h = 0; h < 2; h++) {
      let sum = 0;
      for (let j = 32 * b + 16 * h; j < 32 * b + 16 * h + 16; j++) {
        const v = f32(x[j] * id);
        q[j] = Number.isNaN(v) ? -127 : Math.min(127, Math.max(-127, roundHalfEven(v)));
        sum += q[j];
      }
      s[2 * b + h] = f32(d[b] * sum);
    }
  }
  return { q, d, s };
}

/** The activation quantization's d_x per block of 32, as quant_linear.cc computes it (quantizedActivations' scales). */
function activationScales(x: Float32Array): Float32Array {
  return quantizedActivations(x).d;
}

interface Bounds { worst: number; sigma6: number }

/** For mlx8 / mlx8_f16: 256·|s| of the group at column k0 of row n (the scale is the block's first 16 bits). */
function mlx8Shift(type: QuantType, bytes: Uint8Array, K: number): ((n: number, k0: number) => number) | null {
  if (type !== 'mlx8' && type !== 'mlx8_f16') return null;
  const q = quantFormat(type);
  return (n, k0) => {
    const at = (n * K + k0) / q.blockWeights * q.blockBytes;
    return 256 * Math.abs(type === 'mlx8' ? readBf16(bytes, at) : readF16(bytes, at));
  };
}

/** The integer path's bounds for output (m, n) (header): worst case and six standard deviations, each with the float32 slack R. */
function integerBounds(dense: Float32Array, x: Float32Array, dx: Float32Array, m: number, n: number, K: number, blockW: number,
  shifted: ((n: number, k0: number) => number) | null = null): Bounds {
  let act = 0;
  let variance = 0;
  let slack = 0;
  for (let b = 0; b < K / 32; b++) {
    const d = dx[(m * K) / 32 + b];
    for (let j = 0; j < 32; j++) {
      const w = dense[n * K + 32 * b + j];
      act += (d / 2) * Math.abs(w);
      variance += (w * w * d * d) / 12;
    }
  }
  for (let b0 = 0; b0 < K; b0 += blockW) {
    let wmax = 0;
    for (let k = b0; k < b0 + blockW; k++) wmax = Math.max(wmax, Math.abs(dense[n * K + k]));
    if (shifted) wmax += shifted(n, b0);
    for (let k = b0; k < b0 + blockW; k++) slack += (Math.abs(dense[n * K + k]) + wmax) * Math.abs(x[m * K + k]);
  }
  slack *= 2 ** -20;
  return { worst: act + slack, sigma6: 6 * Math.sqrt(variance) + slack };
}

describe('native quant kernels against the js reference', { skip }, () => {
  setBackend('native');

  test('the native backend serves every format on the cpu (dispatch registers its kernels)', () => {
    for (const type of ROW_TYPES) {
      for (const name of ['quantLinear', 'quantLinearInputGrad', 'quantDequantize', 'quantEmbedding', 'quantQuantize'] as const) {
        assert.equal(getKernel(name, 'cpu', type)?.backend, 'native', `${name} ${type}`);
      }
    }
  });

  test('dequantize equals the js reference bit for bit: quantized rows with edge rows, then random bytes', () => {
    const internals = nativeInternals()!;
    const flush = internals.getFlushDenormals();
    internals.setFlushDenormals(false); // a random bf16 scale may be a float32 subnormal: js keeps it
    try {
      for (const type of ROW_TYPES) {
        const K = colsOf(type);
        const N = 9;
        const { bytes, dense } = weight(type, N, K, 11);
        const k = nativeKernels(type);
        const out = new Float32Array(N * K).fill(NaN);
        k.quantDequantize(buf(bytes), K, 0, N, buf(out));
        sameBits(out, dense, `${type} dequantize`);
        // Rows from the middle (row0 > 0).
        const part = new Float32Array(3 * K);
        k.quantDequantize(buf(bytes), K, 4, 3, buf(part));
        sameBits(part, dense.subarray(4 * K, 7 * K), `${type} rows 4..6`);
        // Every byte random: every code, sign and scale (subnormal, infinite and NaN ones too).
        const rng = new Rng(99);
        const raw = Uint8Array.from({ length: quantBytes(type, 16, K) }, () => rng.int(256));
        const want = new Float32Array(16 * K);
        dequantizeRows(type, raw, K, 0, 16, want);
        const got = new Float32Array(16 * K);
        k.quantDequantize(buf(raw), K, 0, 16, buf(got));
        sameBits(got, want, `${type} random bytes`);
      }
    } finally {
      internals.setFlushDenormals(flush);
    }
  });

  test('embedding gathers the dequantized rows bit for bit and refuses an id outside the table', () => {
    for (const type of ROW_TYPES) {
      const K = colsOf(type);
      const N = 6;
      const { bytes, dense } = weight(type, N, K, 12);
      const ids = Int32Array.from([5, 0, 2, 2, 1]);
      const out = new Float32Array(ids.length * K);
      nativeKernels(type).quantEmbedding(buf(bytes), buf(ids), K, buf(out));
      const want = new Float32Array(ids.length * K);
      ids.forEach((id, i) => want.set(dense.subarray(id * K, (id + 1) * K), i * K));
      sameBits(out, want, `${type} embedding`);
      assert.throws(() => nativeKernels(type).quantEmbedding(buf(bytes), buf(Int32Array.from([1, 6])), K, buf(out)),
        /token id 6 .*outside the table's 6 rows/);
      assert.throws(() => nativeKernels(type).quantEmbedding(buf(bytes), buf(Int32Array.from([-1])), K, buf(out)), /token id -1/);
    }
  });

  /**
   * quantLinear of M rows over an [N, K] weight in `type` takes the integer path, each output within
   * the activation quantization's bounds (header), and the statistical bound is not loose: most
   * errors sit well inside it, and a dropped last block of 32 breaks it for most rows.
   */
  function checkIntegerPath(type: QuantType, N: number, K: number, M: number, seed: number, impl = expectedIntegerPath(type, M)): void {
    const blockW = quantFormat(type).blockWeights;
    const { bytes, dense } = weight(type, N, K, seed);
    const bias = gaussian(N, seed + 1);
    const x = gaussian(M * K, seed + 2 + M);
    const want = new Float32Array(M * N);
    jsQuantKernels(type).quantLinear(bytes, x, M, N, K, want, bias);
    const got = new Float32Array(M * N).fill(NaN);
    nativeKernels(type).quantLinear(buf(bytes), buf(x), M, N, K, buf(got), buf(bias));
    assert.equal(nativeInternals()!.lastQuantImpl(), impl, `${type} M=${M}`);
    const dx = activationScales(x);
    let within = 0;
    let bogusOut = 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const i = m * N + n;
        const err = Math.abs(got[i] - want[i]);
        const b = integerBounds(dense, x, dx, m, n, K, blockW, mlx8Shift(type, bytes, K));
        const at = `${type} K=${K} M=${M} y[${m},${n}] native ${got[i]} vs js ${want[i]}`;
        assert.ok(err <= b.worst, `${at}: |Δ| ${err} past the worst-case bound ${b.worst}`);
        assert.ok(err <= b.sigma6, `${at}: |Δ| ${err} past six standard deviations ${b.sigma6}`);
        if (err <= b.sigma6 / 4) within++;
        let dropped = 0;
        for (let k = K - 32; k < K; k++) dropped += dense[n * K + k] * x[m * K + k];
        if (n >= 3 && Math.abs(dropped) > b.sigma6) bogusOut++;
      }
    }
    assert.ok(within >= 0.5 * M * N, `${type} K=${K} M=${M}: only ${within} of ${M * N} errors within a quarter of the bound`);
    assert.ok(bogusOut >= 0.5 * M * (N - 3), `${type} K=${K} M=${M}: a dropped block stays within the bound for ${M * (N - 3) - bogusOut} rows`);
  }

  test('x is quantized per block of 32 exactly as the scalar arithmetic defines it (AVX-512 or AVX2 registers, or the portable loop), ties to even, zeros, NaN and infinities, over the threads', () => {
    const rng = new Rng(61);
    const crafted = new Float32Array(5 * 32);
    // Block 0: amax 127, so d = 1 and the codes are x to nearest-even: ties both ways, the clamp's edge.
    crafted.set([127, 2.5, -2.5, 3.5, -3.5, 0.5, -0.5, 126.5, -126.5, 1.5, -1.5, 0.49999997, 64.5, -64.5, 0, -0], 0);
    for (let j = 16; j < 32; j++) crafted[j] = f32(Math.max(-126, Math.min(126, rng.normal() * 40)));
    // Block 1 all zeros (d = 0, no division); block 2 a NaN; block 3 an infinity among finite values; block 4 small.
    crafted[2 * 32 + 7] = NaN;
    for (let j = 0; j < 32; j++) crafted[3 * 32 + j] = j === 9 ? -Infinity : f32(rng.normal());
    for (let j = 0; j < 32; j++) crafted[4 * 32 + j] = f32(rng.normal() * 1e-30);
    const random = Float32Array.from({ length: 33 * 576 }, () => f32(rng.normal() * 3)); // 594 blocks: split over the threads where there are two
    for (const [x, K] of [[crafted, 160], [random, 576]] as const) {
      const got = nativeInternals()!.quantizeActivations(x, K);
      const want = quantizedActivations(x);
      assert.deepEqual(got.q, want.q, `codes, K=${K}`);
      assert.deepEqual(got.d, want.d, `scales, K=${K}`);
      assert.deepEqual(got.s, want.s, `half-block sums, K=${K}`);
    }
  });

  test(`quantLinear at M = 1, 3, 7, 8, 11, 12, 16 takes the integer path (${expectedDotPath()} here; the integer tiles from 8 rows where they serve, x86's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 from 12, MLX8 from 16) within the activation quantization's bound`, () => {
    for (const type of INTEGER_TYPES) for (const M of [1, 3, 7, 8, 11, 12, 16]) checkIntegerPath(type, 37, colsOf(type), M, 21);
  });

  test('one and three rows of x over K that leaves 0 to 3 blocks of 32 past whole groups of 128 (quant_rows_avx512.cc reads those with masks), and K under 128', () => {
    for (const type of INTEGER_TYPES.filter((t) => quantFormat(t).blockWeights === 32)) {
      for (const K of [32, 96, 512, 544, 576, 608]) for (const M of [1, 3]) checkIntegerPath(type, 37, K, M, 31);
    }
  });

  test('one row of x over 1 to 9 rows of W (quant_rows_avx512.cc takes four rows at a time, one from each quarter, and the last N mod 4 alone)', () => {
    for (const type of INTEGER_TYPES) for (const N of [1, 2, 3, 4, 5, 9]) checkIntegerPath(type, N, colsOf(type), 1, 51 + N);
  });

  /** The interleaved formats of 256-weight super-blocks, whose rows kernels serve up to 64 rows of x. */
  const superBlocks = (type: QuantType): boolean => type === 'q4_kx8' || type === 'q6_kx8';

  /** What quantLinear takes for M rows of x over an interleaved weight: its rows kernel up to 32 rows (q5_0x8: 24, q4_kx8 and q6_kx8: 64), the integer tiles past (AVX512-VNNI); elsewhere no integer kernel reads them. */
  function rows8Path(type: QuantType, M: number): string {
    if (expectedDotPath() !== 'avx512-vnni') return 'dequant+gemm';
    return M <= (type === 'q5_0x8' ? 24 : superBlocks(type) ? 64 : 32) ? 'avx512-vnni' : 'int8-tiles';
  }

  for (const [type, rowType] of [['q4_0x8', 'q4_0'], ['q8_0x8', 'q8_0'], ['q5_0x8', 'q5_0'], ['q4_kx8', 'q4_k'], ['q6_kx8', 'q6_k']] as const) {
    // A row of 256-weight super-blocks for the K-quants': K = 768 and 256 where the others take 896 and 96 (three blocks).
    const [longK, shortK] = superBlocks(type) ? [768, 256] : [896, 96];
    test(`${type} (${rowType} eight rows to a group): its rows kernel (one row of x two groups at a time, one from each half, or four from each quarter on Intel; up to 8 rows a pass, 32 in all, q5_0x8 24, q4_kx8 and q6_kx8 64) and past them the integer tiles (${rows8Path(type, 1)} / ${rows8Path(type, 33)} here) within the activation quantization's bound`, () => {
      // N = 8: one group; 24: three (a group a half, one alone; no whole quarter); 40: five (two a half or one a quarter, one alone); 72: nine.
      for (const N of [8, 24, 40, 72]) for (const M of [1, 2, 8]) checkIntegerPath(type, N, longK, M, 71 + N, rows8Path(type, M));
      for (const M of [9, 17, 24, 25, 32, 33, 40, ...(superBlocks(type) ? [64, 65] : [])]) checkIntegerPath(type, 40, longK, M, 73, rows8Path(type, M));
      for (const M of [1, 3, 40]) checkIntegerPath(type, 24, shortK, M, 75, rows8Path(type, M));
    });

    test(`${type} against the ${rowType} it was made from, bit for bit: dequantize, embedding, the integer tiles, a training step's exact product, a bf16 step's, the input gradient; and its rows kernel on one thread and two`, () => {
      const [N, K] = [320, superBlocks(type) ? 256 : 160];
      const v = gaussian(N * K, 81, 0.05);
      const rows = quantizeRows(rowType, v, K), x8 = quantizeRows(type, v, K);
      const [ofRows, of8] = [nativeKernels(rowType), nativeKernels(type)];
      const same = (what: string, run: (k: QuantKernels<DeviceBuffer>, w: Uint8Array, out: Float32Array) => void, n: number, fill = NaN): void => {
        const [a, b] = [new Float32Array(n).fill(fill), new Float32Array(n).fill(fill)];
        run(ofRows, rows, a);
        run(of8, x8, b);
        sameBits(b, a, `${type} ${what}`);
      };
      same('dequantize', (k, w, out) => k.quantDequantize(buf(w), K, 3, N - 11, buf(out)), (N - 11) * K);
      const ids = Int32Array.from([0, 7, 8, 319, 161, 5]);
      same('embedding', (k, w, out) => k.quantEmbedding(buf(w), buf(ids), K, buf(out)), ids.length * K);
      const x = gaussian(72 * K, 82), gy = gaussian(40 * N, 83), bias = gaussian(N, 84);
      // The tiles and a bf16 step's GEMM past the rows kernel's reach (q4_kx8's and q6_kx8's: 64 rows).
      const tiled = superBlocks(type) ? 72 : 40;
      if (rows8Path(type, tiled) === 'int8-tiles') same(`integer tiles (${tiled} rows)`, (k, w, out) => k.quantLinear(buf(w), buf(x), tiled, N, K, buf(out), buf(bias)), tiled * N);
      for (const M of [3, 40]) {
        same(`exact product (${M} rows)`, (k, w, out) => k.quantLinear(buf(w), buf(x), M, N, K, buf(out), buf(bias), true), M * N);
        same(`input gradient (${M} rows)`, (k, w, out) => k.quantLinearInputGrad(buf(w), buf(gy), M, N, K, buf(out)), M * K, 0.5);
      }
      same(`bf16 step (${tiled} rows)`, (k, w, out) => k.quantLinear(buf(w), buf(x), tiled, N, K, buf(out), buf(bias), false, true), tiled * N);
      for (const M of [1, 8]) {
        const { two, twoPath, one } = onTwoThreadsThenOne(type, M, 1024, 85);
        assert.equal(twoPath, rows8Path(type, M));
        sameBits(two, one, `${type} M=${M}: two threads against one`);
      }
    });
  }

  test('the native backend repacks a Q4_0, Q8_0, Q5_0, Q4_K or Q6_K matrix of whole groups of eight rows in place into q4_0x8, q8_0x8, q5_0x8, q4_kx8 or q6_kx8 where its 512-bit kernels read them (these bytes, rows8.ts\'s), and leaves any other matrix as it was', () => {
    const repack = registeredBackends().find((b) => b.name === 'native')!.repackQuant!;
    const rows8 = expectedDotPath() === 'avx512-vnni';
    for (const [type, to] of [['q4_0', 'q4_0x8'], ['q8_0', 'q8_0x8'], ['q5_0', 'q5_0x8'], ['q4_k', 'q4_kx8'], ['q6_k', 'q6_kx8']] as const) {
      const K = type === 'q4_k' || type === 'q6_k' ? 512 : 96;
      const v = gaussian(24 * K, 91, 0.05);
      const blocks = quantizeRows(type, v, K);
      const held = blocks.slice();
      assert.equal(repack(type, buf(held), 24, K), rows8 ? to : null, type);
      assert.deepEqual(held, rows8 ? quantizeRows(to, v, K) : blocks, type);
    }
    for (const [type, rows] of [['q4_0', 20], ['q8_0', 12], ['q5_1', 24], ['q4_k', 20], ['q6_k', 20], ['q5_k', 24]] as const) {
      const K = type === 'q4_k' || type === 'q6_k' || type === 'q5_k' ? 256 : 96;
      const bytes = quantizeRows(type, gaussian(rows * K, 92, 0.05), K);
      const before = bytes.slice();
      assert.equal(repack(type, buf(bytes), rows, K), null, `${type} [${rows}, ${K}]`);
      assert.deepEqual(bytes, before, `${type} [${rows}, ${K}] untouched`);
    }
  });

  /** |got − want| within an fp32 GEMM's bound over sums of `terms` products each (header). */
  /** Σ|b| + Σ|x·w| of each output: what a float32 GEMM's rounding scales with. */
  function productMagnitudes(x: Float32Array, dense: Float32Array, bias: Float32Array, M: number, N: number, K: number): Float64Array {
    const mag = new Float64Array(M * N);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = Math.abs(bias[n]);
        for (let k = 0; k < K; k++) s += Math.abs(x[m * K + k] * dense[n * K + k]);
        mag[m * N + n] = s;
      }
    }
    return mag;
  }

  function withinGemmBound(got: Float32Array, want: Float32Array, magnitude: Float64Array, terms: number, what: string): void {
    for (let i = 0; i < got.length; i++) {
      const bound = (terms + 2) * 2 ** -24 * magnitude[i];
      if (!(Math.abs(got[i] - want[i]) <= bound)) assert.fail(`${what}: [${i}] native ${got[i]} vs js ${want[i]} (bound ${bound})`);
    }
  }

  test('quantLinear at M = 40 runs dequantized tiles and the fp32 GEMM (several tiles, a bias) within the GEMM bound: always under exact (a training step), else where the integer tiles do not serve', () => {
    const [M, N] = [40, 300];
    for (const type of ROW_TYPES) {
      const K = quantFormat(type).blockWeights === 256 ? 256 : 320;
      const { bytes, dense } = weight(type, N, K, 31);
      const x = gaussian(M * K, 32);
      const bias = gaussian(N, 33);
      const want = new Float32Array(M * N);
      jsQuantKernels(type).quantLinear(bytes, x, M, N, K, want, bias);
      for (const exact of INT8_TILE_TYPES.includes(type) ? [true] : [false, true]) {
        const got = new Float32Array(M * N).fill(NaN);
        nativeKernels(type).quantLinear(buf(bytes), buf(x), M, N, K, buf(got), buf(bias), exact);
        assert.equal(nativeInternals()!.lastQuantImpl(), 'dequant+gemm', `${type} exact ${exact}`);
        withinGemmBound(got, want, productMagnitudes(x, dense, bias, M, N, K), K, `${type} M=40 exact ${exact}`);
      }
    }
  });

  test(`at inference every integer format takes integer GEMMs over repacked tiles from 8 rows (x86's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 from 12, MLX8 from 16) (${INT8_TILE_TYPES.length ? `${expectedDotPath()} here` : 'not on this CPU: the tiles + GEMM'}) within the activation quantization's bound`, () => {
    for (const type of INTEGER_TYPES) {
      const K = colsOf(type);
      if (!INT8_TILE_TYPES.includes(type)) {
        nativeKernels(type).quantLinear(buf(weight(type, 37, K, 41).bytes), buf(gaussian(17 * K, 42)), 17, 37, K, buf(new Float32Array(17 * 37)), null);
        assert.equal(nativeInternals()!.lastQuantImpl(), 'dequant+gemm', type);
        continue;
      }
      // M = 17: two passes of 8 rows and one of 1; 40: five of 8; 67: a last of 3. N = 37: two whole tiles of 16 and one of 5.
      for (const M of [17, 40, 67]) checkIntegerPath(type, 37, K, M, 41);
      // Other widths: a single block, and K = 576 (18 blocks of 32, 9 groups of 64) or three super-blocks.
      const blockW = quantFormat(type).blockWeights;
      for (const other of blockW === 256 ? [768] : blockW === 64 ? [64, 576] : [32, 576]) checkIntegerPath(type, 37, other, 24, 43);
    }
  });

  test('the input gradient gx += gy·W through the tiles, at 3 and 40 rows, within the GEMM bound', () => {
    const N = 300;
    for (const type of ROW_TYPES) {
      const K = quantFormat(type).blockWeights === 256 ? 256 : 320;
      const { bytes, dense } = weight(type, N, K, 41);
      for (const M of [3, 40]) {
        const gy = gaussian(M * N, 42 + M);
        const gx0 = gaussian(M * K, 43 + M);
        const want = Float32Array.from(gx0);
        jsQuantKernels(type).quantLinearInputGrad(bytes, gy, M, N, K, want);
        const got = Float32Array.from(gx0);
        nativeKernels(type).quantLinearInputGrad(buf(bytes), buf(gy), M, N, K, buf(got));
        const mag = new Float64Array(M * K);
        for (let m = 0; m < M; m++) {
          for (let k = 0; k < K; k++) {
            let s = Math.abs(gx0[m * K + k]);
            for (let n = 0; n < N; n++) s += Math.abs(gy[m * N + n] * dense[n * K + k]);
            mag[m * K + k] = s;
          }
        }
        withinGemmBound(got, want, mag, N + 1, `${type} input grad M=${M}`);
      }
    }
  });

  /**
   * Under a bf16 step the tiles' products take autocast's operands: x (or gy) and W's dequantized
   * values rounded to bf16, products exact in float32 (8 + 8 significant bits), summed in float32:
   * the js reference over the same rounded operands within the GEMM bound. At K = 256/320 the
   * float32 operands' product lies outside that bound (so the rounding is pinned); at K = 8192 a
   * tile holds 128 rows of W and N = 260 takes three (quant_tiles_bf16.cc bf16TileRows), at 4 rows
   * of x (the thin bf16 product where the CPU has one). The rounding is the format's dequantized
   * values' whatever the format: four formats of each kind of block stand for the rest.
   */
  test('under a bf16 step the tiles take bf16 operands (x, gy and each dequantized weight rounded) and the bf16 GEMM, forward and input gradient, one tile and three', () => {
    const cases: [QuantType, number, number, number][] = [
      ...(['q8_0', 'q4_k', 'mlx4', 'nf4'] as const).map((t): [QuantType, number, number, number] => [t, quantFormat(t).blockWeights === 256 ? 256 : 320, 16, 64]),
      ['q4_0', 8192, 4, 260],
    ];
    for (const [type, K, M, N] of cases) {
      const { bytes, dense } = weight(type, N, K, 91);
      const js = jsQuantKernels(type);
      const x = gaussian(M * K, 92);
      const bias = gaussian(N, 93);
      const want = new Float32Array(M * N);
      js.quantLinear(bytes, x, M, N, K, want, bias, true, true);
      const got = new Float32Array(M * N).fill(NaN);
      nativeKernels(type).quantLinear(buf(bytes), buf(x), M, N, K, buf(got), buf(bias), true, true);
      assert.equal(nativeInternals()!.lastQuantImpl(), 'dequant+gemm-bf16');
      const [xb, wb] = [roundedThroughBf16(x), roundedThroughBf16(dense)];
      withinGemmBound(got, want, productMagnitudes(xb, wb, bias, M, N, K), K, `${type} K=${K} bf16 forward`);
      if (K < 8192) {
        const float32 = new Float32Array(M * N);
        js.quantLinear(bytes, x, M, N, K, float32, bias, true);
        assert.throws(() => withinGemmBound(got, float32, productMagnitudes(xb, wb, bias, M, N, K), K, 'float32 operands'), /bound/, `${type}: the bf16 product equals the float32 one`);
      }
      const gy = gaussian(M * N, 94);
      const gx0 = gaussian(M * K, 95);
      const gradWant = Float32Array.from(gx0);
      js.quantLinearInputGrad(bytes, gy, M, N, K, gradWant, true);
      const gradGot = Float32Array.from(gx0);
      nativeKernels(type).quantLinearInputGrad(buf(bytes), buf(gy), M, N, K, buf(gradGot), true);
      const gyb = roundedThroughBf16(gy);
      const mag = new Float64Array(M * K);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          const g = Math.abs(gyb[m * N + n]);
          for (let k = 0; k < K; k++) mag[m * K + k] += g * Math.abs(wb[n * K + k]);
        }
        for (let k = 0; k < K; k++) mag[m * K + k] += Math.abs(gx0[m * K + k]);
      }
      withinGemmBound(gradGot, gradWant, mag, N + 1, `${type} K=${K} bf16 input grad`);
    }
  });

  test('forced paths: the integer path past 16 rows (passes of 8) and tiles + GEMM at one row, within the same bounds', () => {
    const internals = nativeInternals()!;
    const N = 19;
    try {
      // 19 rows: passes of 8, 8 and 3 on the integer path, where auto would take the tiles (17: a last pass of one row).
      for (const [type, M] of [['q4_0', 19], ['q4_0', 17], ['q8_0', 17], ['q4_k', 19], ['mlx8', 19]] as const) {
        const K = colsOf(type);
        const { bytes, dense } = weight(type, N, K, 51);
        const js = jsQuantKernels(type);
        const x = gaussian(M * K, 52);
        const want = new Float32Array(M * N);
        js.quantLinear(bytes, x, M, N, K, want, null);
        internals.setQuantPath('dot');
        const got = new Float32Array(M * N).fill(NaN);
        nativeKernels(type).quantLinear(buf(bytes), buf(x), M, N, K, buf(got), null);
        assert.equal(internals.lastQuantImpl(), expectedDotPath());
        const dx = activationScales(x);
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            const b = integerBounds(dense, x, dx, m, n, K, quantFormat(type).blockWeights, mlx8Shift(type, bytes, K));
            assert.ok(Math.abs(got[m * N + n] - want[m * N + n]) <= b.sigma6, `${type} dot M=${M} y[${m},${n}]`);
          }
        }
        internals.setQuantPath('gemm');
        const one = new Float32Array(N);
        nativeKernels(type).quantLinear(buf(bytes), buf(x.subarray(0, K)), 1, N, K, buf(one), null);
        assert.equal(internals.lastQuantImpl(), 'dequant+gemm');
        const mag = new Float64Array(N);
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) mag[n] += Math.abs(x[k] * dense[n * K + k]);
        withinGemmBound(one, want.subarray(0, N), mag, K, `${type} gemm M=1`);
      }
      assert.throws(() => internals.setQuantPath('fast'), /expected "auto", "dot" or "gemm"/);
    } finally {
      internals.setQuantPath('auto');
    }
  });

  for (const type of FLOAT_CODED_TYPES) test(`${type} has no integer path: the tiles + fp32 GEMM at every M${type === 'f16' ? ' (up to 8 rows under auto: widened where read)' : ''}, "dot" forced too, within the GEMM bound`, () => {
    const internals = nativeInternals()!;
    const [N, K] = [37, colsOf(type)];
    const { bytes, dense } = weight(type, N, K, 81);
    const bias = gaussian(N, 82);
    try {
      for (const path of ['auto', 'dot'] as const) {
        internals.setQuantPath(path);
        for (const M of [1, 3, 8, 16, 17, 33]) {
          const x = gaussian(M * K, 83 + M);
          const want = new Float32Array(M * N);
          jsQuantKernels(type).quantLinear(bytes, x, M, N, K, want, bias);
          const got = new Float32Array(M * N).fill(NaN);
          nativeKernels(type).quantLinear(buf(bytes), buf(x), M, N, K, buf(got), buf(bias));
          // f16 at a few rows under auto: widened where read (linear_widened.cc), the same float32 products in another order.
          const thin = type === 'f16' && path === 'auto' && M <= 8;
          assert.equal(internals.lastQuantImpl(), thin ? 'f16-widened' : 'dequant+gemm', `${type} ${path} M=${M}`);
          withinGemmBound(got, want, productMagnitudes(x, dense, bias, M, N, K), K, `${type} ${path} M=${M}`);
        }
      }
    } finally {
      internals.setQuantPath('auto');
    }
    // A NaN or an infinity in x reaches its row of y through the GEMM as IEEE arithmetic has it (NaN,
    // or the infinity where no weight it meets is zero): never a finite value.
    const x = gaussian(3 * K, 84);
    x[K + 40] = NaN;
    x[2 * K + 7] = -Infinity;
    const y = new Float32Array(3 * N);
    nativeKernels(type).quantLinear(buf(bytes), buf(x), 3, N, K, buf(y), null);
    for (let n = 0; n < N; n++) {
      assert.ok(Number.isFinite(y[n]), `${type} row 0 stays finite: y[${n}] = ${y[n]}`);
      assert.ok(Number.isNaN(y[N + n]) && !Number.isFinite(y[2 * N + n]), `${type} y[1..2, ${n}]: ${y[N + n]}, ${y[2 * N + n]}`);
    }
  });

  test('f16\'s thin product widens every finite float16 exactly (subnormals, ±0, every exponent): x one-hot gives the weight back', () => {
    // Every finite float16 pattern (exponent < 31), 32 to a row: a [1984, 32] f16 matrix.
    const bits = Uint16Array.from({ length: 2 * 31 * 1024 }, (_, i) => (i < 31 * 1024 ? i : 0x8000 | (i - 31 * 1024)));
    const [N, K] = [bits.length / 32, 32];
    const bytes = new Uint8Array(bits.buffer);
    const y = new Float32Array(N);
    for (let k = 0; k < K; k++) {
      const x = new Float32Array(K);
      x[k] = 1;
      nativeKernels('f16').quantLinear(buf(bytes), buf(x), 1, N, K, buf(y), null);
      assert.equal(nativeInternals()!.lastQuantImpl(), 'f16-widened');
      for (let n = 0; n < N; n++) {
        const want = fromF16Bits(bits[n * K + k]);
        if (!Object.is(y[n], want) && !(want === 0 && y[n] === 0)) assert.fail(`0x${bits[n * K + k].toString(16)}: ${y[n]}, want ${want}`);
      }
    }
  });

  test('the integer path split over two threads gives the one-thread results bit for bit (rows of W are independent)', () => {
    const N = 600; // past two grains of rows for every K here (quant_linear.cc: ≥ 64 KB of weight a thread)
    for (const [type, M] of [['q4_0', 3], ['q8_0', 3], ['q4_k', 3], ['q6_k', 3], ['mlx4', 3], ['q4_0', 1], ['q5_0', 1], ['q8_0', 1], ['q4_k', 1], ['q6_k', 1]] as const) {
      const { two, one } = onTwoThreadsThenOne(type, M, N, 61);
      sameBits(two, one, `${type} M=${M} two threads`);
    }
  });

  test('the tiles + GEMM path split over two threads (whole tiles each) gives the one-thread results bit for bit', () => {
    const N = 600; // five tiles of W (quant_linear.cc kQuantTileRows, 128 rows), ≥ 2 MFLOP of GEMM each at M = 48
    const M = 48; // an exact (training) step: the float tiles whatever the rows
    for (const type of ['q4_0', 'q8_0', 'q4_k', 'nf4', 'mlx4'] as const) {
      const { two, twoPath, one } = onTwoThreadsThenOne(type, M, N, 64, true);
      assert.equal(twoPath, 'dequant+gemm', `${type} M=${M} takes the tiles`);
      sameBits(two, one, `${type} M=${M} two threads`);
    }
  });

  test('the integer tiles split over two threads (whole tiles of 16 rows each) give the one-thread results bit for bit', () => {
    const N = 600; // 37 tiles of 16 and one of 8
    const M = 19; // a last pass shorter than the others (x86: 8, 8, 3; arm64: 4 × 4, 3)
    for (const type of INT8_TILE_TYPES) {
      const { two, twoPath, one } = onTwoThreadsThenOne(type, M, N, 65);
      assert.equal(twoPath, 'int8-tiles', `${type} M=${M}`);
      sameBits(two, one, `${type} M=${M} two threads`);
    }
  });

  test('a NaN or an infinity in x makes its row of y NaN on the integer path (never a finite value that hides it)', () => {
    for (const type of ['q8_0', 'q4_0', 'q5_0', 'q4_k', 'mlx4'] as const) {
      const K = colsOf(type);
      const N = 5;
      const { bytes } = weight(type, N, K, 71);
      const x = gaussian(3 * K, 72);
      x[K + 40] = NaN;
      x[2 * K + 7] = -Infinity;
      const y = new Float32Array(3 * N);
      nativeKernels(type).quantLinear(buf(bytes), buf(x), 3, N, K, buf(y), null);
      for (let n = 0; n < N; n++) {
        assert.ok(Number.isFinite(y[n]), `${type} row 0 stays finite`);
        assert.ok(Number.isNaN(y[N + n]) && Number.isNaN(y[2 * N + n]), `${type} y[1..2, ${n}]: ${y[N + n]}, ${y[2 * N + n]}`);
      }
      // One row (batch-1 decode has a kernel of its own).
      const one = new Float32Array(N);
      nativeKernels(type).quantLinear(buf(bytes), buf(x.subarray(K, 2 * K)), 1, N, K, buf(one), null);
      for (let n = 0; n < N; n++) assert.ok(Number.isNaN(one[n]), `${type} one row: y[${n}] = ${one[n]}`);
    }
  });

  test('a row that is not whole blocks and a short weight are refused with the format named', () => {
    const k = nativeKernels('q4_k');
    const bytes = new Uint8Array(quantBytes('q4_k', 2, 256));
    const y = new Float32Array(4);
    assert.throws(() => k.quantLinear(buf(bytes), buf(new Float32Array(2 * 128)), 1, 2, 128, buf(y), null), /not a whole number of q4_k blocks/);
    assert.throws(() => k.quantLinear(buf(bytes), buf(new Float32Array(256)), 1, 3, 256, buf(y), null), /3 rows of 256 q4_k weights need 432/);
    // The addon names nf4 by the index native_quant.ts passes (QUANT_TYPES order = quant_blocks.h QFmt's).
    const nf4 = nativeKernels('nf4');
    const nf4Bytes = new Uint8Array(quantBytes('nf4', 2, 128));
    assert.throws(() => nf4.quantLinear(buf(nf4Bytes), buf(new Float32Array(96)), 1, 2, 96, buf(y), null), /not a whole number of nf4 blocks \(64 weights each\)/);
    assert.throws(() => nf4.quantLinear(buf(nf4Bytes), buf(new Float32Array(128)), 1, 3, 128, buf(y), null), /3 rows of 128 nf4 weights need 198/);
  });
});

