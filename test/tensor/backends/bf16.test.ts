/**
 * The native bf16 kernels against the js ones (src/tensor/backends/js/bf16.ts): the same rounding,
 * bit for bit, over every class of float32 (normals, ties, denormals, infinities, NaNs) and large
 * random buffers (the threaded path); the bf16 GEMM and convolution within float32 summation-order
 * differences on odd sizes, transposes, broadcast batches, a bias and beta = 1; and the oneDNN
 * implementation they run where the CPU has bf16 instructions (not the reference kernels), or the
 * float32 product over widened operands where the build has no oneDNN (OpenBLAS-only, arm64). The
 * instructions are the addon's CPU table's word (nativeCpuTable, capped by SMOLCLUSTER_CPU), never
 * /proc/cpuinfo: under qemu an arm64 process reads the x86 host's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Conv2dGeometry, HostBackend } from '../../../src/tensor/backend.js';
import { jsHostBackend as js } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeCpuTable, nativeInternals } from '../../../src/tensor/backends/native.js';
import { Rng } from '../../../src/util/rng.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;
const skip = native ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

function randomBits(n: number, rng: Rng): Float32Array {
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = (Math.floor(rng.uniform() * 0x10000) << 16 | Math.floor(rng.uniform() * 0x10000)) >>> 0;
  return new Float32Array(u.buffer);
}

function bf16Of(k: HostBackend, x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  k.toBf16(x, out);
  return out;
}

function randomBf16(n: number, rng: Rng): Uint16Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal();
  return bf16Of(js, x);
}

function assertNear(a: Float32Array, b: Float32Array, rtol: number, msg: string): void {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - b[i]) <= rtol * scale)) assert.fail(`${msg}: element ${i}: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

/** Whether this process's CPU level has the bf16 instructions oneDNN's bf16 kernels use (x86-64: AVX512-BF16 or AMX). */
function cpuHasBf16(): boolean {
  const cpu = nativeCpuTable();
  return process.arch === 'x64' && cpu?.arch === 'x64' && (cpu.features.avx512bf16 === true || cpu.features.amxBf16 === true);
}
const hasDnnl = nativeInternals()?.libraries.dnnl === true;

describe('bf16 kernels: native against js', { skip }, () => {
  test('toBf16 rounds every class of float32 to the same bits (random patterns, 1M elements: threaded)', () => {
    const x = randomBits(1 << 20, new Rng(1));
    assert.deepEqual(bf16Of(native!, x), bf16Of(js, x));
  });

  test('fromBf16 widens exactly', () => {
    const b = new Uint16Array(1 << 16).map((_, i) => i);
    const a = new Float32Array(b.length), c = new Float32Array(b.length);
    native!.fromBf16(b, a);
    js.fromBf16(b, c);
    assert.deepEqual(new Uint32Array(a.buffer), new Uint32Array(c.buffer));
  });

  test('batchNormBackward masks by a bf16 copy of the output as by its float32 widening (every bf16 pattern), on both engines', () => {
    const [outer, C, inner] = [4, 4, 4096];
    const n = outer * C * inner;
    const rng = new Rng(7);
    const normal = (m: number): Float32Array => Float32Array.from({ length: m }, () => rng.normal());
    const mask = new Uint16Array(n).map((_, i) => i); // every bf16 bit pattern once: ±0, denormals, ±inf, NaNs
    const [x, gy, gamma] = [normal(n), normal(n), normal(C)];
    const mean = new Float32Array(C).fill(0.1);
    const invStd = new Float32Array(C).fill(1.5);
    for (const k of [js, native!]) {
      const run = (reluY: Float32Array | Uint16Array | null): Float32Array[] => {
        const [gx, gGamma, gBeta] = [new Float32Array(n), new Float32Array(C), new Float32Array(C)];
        k.batchNormBackward(x, outer, C, inner, gamma, mean, invStd, gy, gx, gGamma, gBeta, true, reluY);
        return [gx, gGamma, gBeta];
      };
      const wide = new Float32Array(n);
      k.fromBf16(mask, wide);
      const [fromBf16, fromFloat] = [run(mask), run(wide)];
      fromBf16.forEach((a, i) => assert.deepEqual(new Uint32Array(a.buffer), new Uint32Array(fromFloat[i].buffer), k.name));
      // The mask did something: unmasked, gx differs.
      const [unmasked] = run(null);
      assert.ok(fromBf16[0].some((v, i) => v !== unmasked[i]), k.name);
    }
  });

  const gemms: [boolean, boolean, number, number, number, number, number, number, boolean][] = [
    // transA, transB, M, N, K, alpha, beta, batch, bias
    [false, false, 13, 7, 29, 1, 0, 1, false],
    [false, true, 64, 48, 96, 1, 0, 1, true],
    [true, false, 31, 17, 9, 0.5, 1, 1, false],
    [true, true, 5, 40, 33, 1, 1, 3, false],
    [false, true, 16, 16, 8, 0.125, 0, 6, false],
  ];
  for (const [ta, tb, M, N, K, alpha, beta, batch, bias] of gemms) {
    test(`gemmBf16 ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}×${N}×${K} alpha ${alpha} beta ${beta} batch ${batch}${bias ? ' bias' : ''}`, () => {
      const rng = new Rng(M * N + K);
      const A = randomBf16(batch * M * K, rng), B = randomBf16(batch * N * K, rng);
      const c0 = Float32Array.from({ length: batch * M * N }, () => rng.normal());
      const b = bias ? Float32Array.from({ length: N }, () => rng.normal()) : null;
      const [cn, cj] = [Float32Array.from(c0), Float32Array.from(c0)];
      native!.bfloat16!.gemm(ta, tb, M, N, K, alpha, A, M * K, B, N * K, beta, cn, M * N, batch, b);
      js.bfloat16!.gemm(ta, tb, M, N, K, alpha, A, M * K, B, N * K, beta, cj, M * N, batch, b);
      assertNear(cn, cj, 1e-5, 'C');
    });
  }

  test('gemmBf16 with a broadcast A (stride 0) and every batch into one C (strideC 0)', () => {
    const rng = new Rng(9);
    const A = randomBf16(6 * 10, rng), B = randomBf16(4 * 10 * 5, rng);
    const [cn, cj] = [new Float32Array(4 * 6 * 5), new Float32Array(4 * 6 * 5)];
    native!.bfloat16!.gemm(false, false, 6, 5, 10, 1, A, 0, B, 50, 0, cn, 30, 4);
    js.bfloat16!.gemm(false, false, 6, 5, 10, 1, A, 0, B, 50, 0, cj, 30, 4);
    assertNear(cn, cj, 1e-5, 'broadcast A');
    const [sn, sj] = [new Float32Array(30).fill(1), new Float32Array(30).fill(1)];
    native!.bfloat16!.gemm(false, false, 6, 5, 10, 1, A, 0, B, 50, 1, sn, 0, 4);
    js.bfloat16!.gemm(false, false, 6, 5, 10, 1, A, 0, B, 50, 1, sj, 0, 4);
    assertNear(sn, sj, 1e-5, 'one C');
  });

  const convs: Conv2dGeometry[] = [
    { batch: 2, inC: 3, inH: 11, inW: 9, outC: 8, kH: 3, kW: 3, strideH: 2, strideW: 1, padH: 1, padW: 1, outH: 6, outW: 9 },
    { batch: 3, inC: 16, inH: 7, inW: 7, outC: 32, kH: 1, kW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, outH: 7, outW: 7 },
    { batch: 2, inC: 20, inH: 8, inW: 8, outC: 16, kH: 3, kW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, outH: 8, outW: 8 },
  ];
  for (const g of convs) {
    test(`conv2dBf16 and its backward ${g.inC}→${g.outC} ${g.kH}×${g.kW} stride ${g.strideH},${g.strideW}`, () => {
      const rng = new Rng(g.inC * g.outC);
      const xs = g.batch * g.inC * g.inH * g.inW, ws = g.outC * g.inC * g.kH * g.kW, ys = g.batch * g.outC * g.outH * g.outW;
      const x = randomBf16(xs, rng), w = randomBf16(ws, rng);
      const bias = Float32Array.from({ length: g.outC }, () => rng.normal());
      const [yn, yj] = [new Float32Array(ys), new Float32Array(ys)];
      native!.bfloat16!.conv2d(g, x, w, bias, yn);
      js.bfloat16!.conv2d(g, x, w, bias, yj);
      assertNear(yn, yj, 1e-5, 'y');
      const gy = Float32Array.from({ length: ys }, () => rng.normal());
      const gx0 = Float32Array.from({ length: xs }, () => rng.normal());
      const out = [native!, js].map((k) => {
        const gx = Float32Array.from(gx0), gw = new Float32Array(ws).fill(0.5), gb = new Float32Array(g.outC).fill(0.25);
        k.bfloat16!.conv2dBackward(g, x, w, gy, gx, gw, gb, false);
        const gxSet = new Float32Array(xs).fill(NaN);
        k.bfloat16!.conv2dBackward(g, x, w, gy, gxSet, new Float32Array(ws), null, true);
        return { gx, gw, gb, gxSet };
      });
      assertNear(out[0].gx, out[1].gx, 1e-5, 'gx (accumulated)');
      assertNear(out[0].gw, out[1].gw, 1e-5, 'gw (accumulated)');
      assertNear(out[0].gb, out[1].gb, 1e-5, 'gBias (accumulated)');
      assertNear(out[0].gxSet, out[1].gxSet, 1e-5, 'gx (set)');
    });
  }

  test('softmaxCausal: the same probabilities', () => {
    const rng = new Rng(4);
    const x = Float32Array.from({ length: 3 * 5 * 7 }, () => 4 * rng.normal());
    const [a, b] = [new Float32Array(x.length), new Float32Array(x.length)];
    native!.softmaxCausal(x, 3, 5, 7, a);
    js.softmaxCausal(x, 3, 5, 7, b);
    assertNear(a, b, 1e-6, 'probs');
    for (let r = 0; r < 5; r++) for (let j = r + 1; j < 7; j++) assert.equal(a[r * 7 + j], 0);
  });

  test('without oneDNN in the build the GEMM and convolution run the float32 product over widened operands', { skip: hasDnnl && 'this build has oneDNN (next test)' }, () => {
    const A = new Uint16Array(64 * 64).fill(0x3f80);
    native!.bfloat16!.gemm(false, false, 64, 64, 64, 1, A, 0, A, 0, 0, new Float32Array(64 * 64), 0, 1);
    assert.equal(nativeInternals()!.lastBf16GemmImpl(), 'float32 fallback (no oneDNN)');
    const g = convs[2];
    native!.bfloat16!.conv2d(g, new Uint16Array(g.batch * g.inC * 64), new Uint16Array(g.outC * g.inC * 9), null, new Float32Array(g.batch * g.outC * 64));
    assert.equal(nativeInternals()!.lastConvBf16Impl(), 'float32 fallback (no oneDNN)');
  });

  test('on a CPU with bf16 instructions the GEMM and convolution run oneDNN bf16 kernels, not the reference ones', { skip: !hasDnnl ? 'no oneDNN in this build (previous test)' : cpuHasBf16() ? false : `no avx512_bf16 / amx_bf16 at cpu level ${nativeCpuTable()?.level}` }, () => {
    const A = new Uint16Array(64 * 64).fill(0x3f80);
    native!.bfloat16!.gemm(false, false, 64, 64, 64, 1, A, 0, A, 0, 0, new Float32Array(64 * 64), 0, 1);
    const impl = nativeInternals()!.lastBf16GemmImpl();
    assert.match(impl, /bf16/, `gemm ran ${impl}`);
    assert.doesNotMatch(impl, /^ref/);
    const g = convs[2];
    native!.bfloat16!.conv2d(g, new Uint16Array(g.batch * g.inC * 64), new Uint16Array(g.outC * g.inC * 9), null, new Float32Array(g.batch * g.outC * 64));
    assert.match(nativeInternals()!.lastConvBf16Impl(), /bf16/);
  });
});
