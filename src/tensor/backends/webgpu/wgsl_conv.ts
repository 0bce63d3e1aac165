import type { KernelSpec } from './stream.js';
import { ELEM } from './wgsl_elementwise.js';
import { CONV_G } from './wgsl_nn.js';

/**
 * Implicit-GEMM convolution: forward, backward-data and backward-weights as GEMMs whose operand
 * tiles are gathered from the NCHW tensors on the fly (no im2col buffer):
 *
 *   forward   y   [M = batch·outH·outW, N = outC] = x-windows [M, K = inC·kH·kW] · wᵀ
 *   data      gx  [M = batch·inH·inW,   N = inC]  = gy-windows [M, K = outC·kH·kW] · w
 *   weights   gwᵀ [M = inC·kH·kW,       N = outC] = x-windowsᵀ [M, K = batch·outH·outW] · gy
 *
 * Every kernel is the tile of wgsl_nn.ts `gemm` (16×16 invocations, K in steps of 16 through
 * workgroup memory), 64 along M and 16, 32 or 64 along N (nTileOf: few channels, a narrow tile),
 * with an invocation's 4×qn outputs strided by 16 along both axes, so that neighbouring
 * invocations write neighbouring pixels (M is the contiguous axis of every output).
 * A window element outside the image (padding) or between strides (the data gradient of a strided
 * convolution) is a zero of the gathered operand. The weight gradient's K (every output pixel of
 * the batch) is long and its M·N small: it is split over `splits` workgroup layers that write
 * partial sums, added into gw by `sumSplits`.
 */
export const CONV_TILE = 64;

/**
 * The N tile for N output columns (channels): 16, 32 or 64 wide (qn = 1, 2, 4 columns per
 * invocation), so that a convolution with few channels does not pay for a 64-wide tile.
 */
export function nTileOf(N: number): number {
  return N <= 16 ? 1 : N <= 32 ? 2 : 4;
}

/** One compiled spec per N tile (the stream keys its pipelines by the spec's name). */
function perTile(make: (qn: number) => KernelSpec): (qn: number) => KernelSpec {
  const specs = new Map<number, KernelSpec>();
  return (qn) => {
    let spec = specs.get(qn);
    if (!spec) specs.set(qn, (spec = make(qn)));
    return spec;
  };
}

/** Workgroup tiles: k-major, one pad column; B's width is the N tile (16·qn). */
const TILES = (qn: number): string => `
var<workgroup> As: array<array<f32, 65>, 16>;
var<workgroup> Bs: array<array<f32, ${16 * qn + 1}>, 16>;`;

const ENTRY = (qn: number): string => `@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ohw = u32(g_outH() * g_outW()); let khw = u32(g_kH() * g_kW()); let ihw = u32(g_inH() * g_inW());
  let m0 = wid.y * 64u; let n0 = wid.x * ${16 * qn}u;
  var acc: array<array<f32, ${qn}>, 4>;`;

/** acc[p][q] += As[k][lid.x + 16p] · Bs[k][lid.y + 16q] over the 16 k of the tile (q < qn). */
const PRODUCT = (qn: number): string => `
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var ar: array<f32, 4>; var br: array<f32, ${qn}>;
      for (var p = 0u; p < 4u; p++) { ar[p] = As[kk][lid.x + 16u * p]; }
      for (var q = 0u; q < ${qn}u; q++) { br[q] = Bs[kk][lid.y + 16u * q]; }
      for (var p = 0u; p < 4u; p++) { for (var q = 0u; q < ${qn}u; q++) { acc[p][q] = fma(ar[p], br[q], acc[p][q]); } }
    }
    workgroupBarrier();`;

/** Bs[k][n] = w at `index` (of gn, gkb) for the tile's 16 k and 16·qn n; 0 outside [N, K]. */
const LOAD_W = (qn: number, index: string): string => `
    for (var r = 0u; r < ${qn}u; r++) {
      let gn = n0 + bn + 16u * r; let gkb = k0 + bk;
      var bv = 0.0;
      if (gn < N && gkb < K) { bv = w_at(${index}); }
      Bs[bk][bn + 16u * r] = bv;
    }`;

/**
 * Each of the invocation's outputs in [M, N]: `row` runs once per m, `store` once per (m, n) with
 * its sum acc[p][q].
 */
const EACH_OUTPUT = (qn: number, row: string, store: string): string => `
  for (var p = 0u; p < 4u; p++) {
    let m = m0 + lid.x + 16u * p;
    if (m >= M) { continue; }${row}
    for (var q = 0u; q < ${qn}u; q++) {
      let n = n0 + lid.y + 16u * q;
      if (n >= N) { continue; }
      ${store}
    }
  }`;

export const convForward = perTile((qn) => ({
  name: `convForward${16 * qn}`, bufs: ['x', 'w', 'bias', 'y'], params: [['hasBias', 'u'], ['g', 'u13']],
  body: `${CONV_G}
${TILES(qn)}
${ENTRY(qn)}
  let M = g_batch() * ohw; let N = g_outC(); let K = g_inC() * khw;
  // A (x's windows) is loaded along m: this invocation's pixel is m0 + li % 64, its rows li / 64 + 4r.
  let am = li % 64u; let ak = li / 64u;
  let gm = m0 + am; let mIn = gm < M;
  let pix = gm % ohw;
  let iy0 = i32(pix / u32(g_outW())) * g_sH() - g_pH(); let ix0 = i32(pix % u32(g_outW())) * g_sW() - g_pW();
  let xBase = (gm / ohw) * g_inC() * ihw;
  // B (wᵀ: w is [N, K]) is loaded along k.
  let bk = li % 16u; let bn = li / 16u;
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    for (var r = 0u; r < 4u; r++) {
      let kk = ak + 4u * r; let gk = k0 + kk;
      var av = 0.0;
      if (mIn && gk < K) {
        let t = gk % khw;
        let iy = iy0 + i32(t / u32(g_kW())); let ix = ix0 + i32(t % u32(g_kW()));
        if (iy >= 0 && iy < g_inH() && ix >= 0 && ix < g_inW()) { av = x_at(xBase + (gk / khw) * ihw + u32(iy * g_inW() + ix)); }
      }
      As[kk][am] = av;
    }
${LOAD_W(qn, 'gn * K + gkb')}
${PRODUCT(qn)}
  }
${EACH_OUTPUT(qn, `
    let yBase = (m / ohw) * N * ohw + m % ohw;`, 'var v = acc[p][q]; if (P_hasBias() == 1u) { v += bias_at(n); } y_set(yBase + n * ohw, v);')}
}`,
}));

export const convBackwardData = perTile((qn) => ({
  name: `convBackwardData${16 * qn}`, bufs: ['gy', 'w', 'gx'], params: [['set', 'u'], ['g', 'u13']],
  body: `${CONV_G}
${TILES(qn)}
${ENTRY(qn)}
  let M = g_batch() * ihw; let N = g_inC(); let K = g_outC() * khw;
  // A (gy's windows): this invocation's input pixel is m0 + li % 64; output (oy, ox) covers it
  // through (ky, kx) when oy·sH = iy + pH - ky.
  let am = li % 64u; let ak = li / 64u;
  let gm = m0 + am; let mIn = gm < M;
  let pix = gm % ihw;
  let iyP = i32(pix / u32(g_inW())) + g_pH(); let ixP = i32(pix % u32(g_inW())) + g_pW();
  let gyBase = (gm / ihw) * g_outC() * ohw;
  // B (w viewed as [K = (oc, ky, kx), N = ic]) is loaded along k.
  let bk = li % 16u; let bn = li / 16u;
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    for (var r = 0u; r < 4u; r++) {
      let kk = ak + 4u * r; let gk = k0 + kk;
      var av = 0.0;
      if (mIn && gk < K) {
        let t = gk % khw;
        let ny = iyP - i32(t / u32(g_kW())); let nx = ixP - i32(t % u32(g_kW()));
        if (ny >= 0 && nx >= 0 && ny % g_sH() == 0 && nx % g_sW() == 0) {
          let oy = ny / g_sH(); let ox = nx / g_sW();
          if (oy < g_outH() && ox < g_outW()) { av = gy_at(gyBase + (gk / khw) * ohw + u32(oy * g_outW() + ox)); }
        }
      }
      As[kk][am] = av;
    }
${LOAD_W(qn, '((gkb / khw) * N + gn) * khw + gkb % khw')}
${PRODUCT(qn)}
  }
${EACH_OUTPUT(qn, `
    let xBase = (m / ihw) * N * ihw + m % ihw;`, 'if (P_set() == 1u) { gx_set(xBase + n * ihw, acc[p][q]); } else { gx_inc(xBase + n * ihw, acc[p][q]); }')}
}`,
}));

export const convBackwardWeight = perTile((qn) => ({
  name: `convBackwardWeight${16 * qn}`, bufs: ['x', 'gy', 'out'], params: [['splits', 'u'], ['chunk', 'u'], ['g', 'u13']],
  body: `${CONV_G}
${TILES(qn)}
${ENTRY(qn)}
  let M = g_inC() * khw; let N = g_outC(); let K = g_batch() * ohw;
  let kBegin = wid.z * P_chunk(); let kEnd = min(K, kBegin + P_chunk());
  // Both operands are loaded along k (output pixels of the batch): this invocation's k is li % 16,
  // its rows of A (weights (ic, ky, kx)) and columns of B (oc) li / 16 + 16r.
  let lk = li % 16u; let lm = li / 16u;
  var aPlane: array<u32, 4>; var aKy: array<i32, 4>; var aKx: array<i32, 4>; var aIn: array<bool, 4>;
  for (var r = 0u; r < 4u; r++) {
    let m = m0 + lm + 16u * r;
    aIn[r] = m < M;
    aPlane[r] = (m / khw) * ihw;
    let t = m % khw;
    aKy[r] = i32(t / u32(g_kW())) - g_pH(); aKx[r] = i32(t % u32(g_kW())) - g_pW();
  }
  for (var k0 = kBegin; k0 < kEnd; k0 += 16u) {
    let gk = k0 + lk; let kIn = gk < kEnd;
    let b = gk / ohw; let pix = gk % ohw;
    let oyS = i32(pix / u32(g_outW())) * g_sH(); let oxS = i32(pix % u32(g_outW())) * g_sW();
    let xBase = b * g_inC() * ihw; let gyBase = b * N * ohw + pix;
    for (var r = 0u; r < 4u; r++) {
      var av = 0.0;
      let iy = oyS + aKy[r]; let ix = oxS + aKx[r];
      if (kIn && aIn[r] && iy >= 0 && iy < g_inH() && ix >= 0 && ix < g_inW()) { av = x_at(xBase + aPlane[r] + u32(iy * g_inW() + ix)); }
      As[lk][lm + 16u * r] = av;
    }
    for (var r = 0u; r < ${qn}u; r++) {
      let gn = n0 + lm + 16u * r;
      var bv = 0.0;
      if (kIn && gn < N) { bv = gy_at(gyBase + gn * ohw); }
      Bs[lk][lm + 16u * r] = bv;
    }
${PRODUCT(qn)}
  }
  // gw is [N = oc, M = (ic, ky, kx)]: one split adds into it, several write their partial sums.
  let partBase = wid.z * M * N;
${EACH_OUTPUT(qn, '', 'if (P_splits() == 1u) { out_inc(n * M + m, acc[p][q]); } else { out_set(partBase + n * M + m, acc[p][q]); }')}
}`,
}));

/** out[i] += Σ_s parts[s·n + i]: the weight gradient's partial sums over the splits of K. */
export const sumSplits: KernelSpec = {
  name: 'sumSplits', bufs: ['parts', 'out'], params: [['n', 'u'], ['splits', 'u']],
  body: `${ELEM('P_n()')}
  var s = 0.0;
  for (var k = 0u; k < P_splits(); k++) { s += parts_at(k * P_n() + i); }
  out_inc(i, s);
}`,
};

/**
 * How the weight gradient splits its K (batch·outH·outW): enough layers of workgroups to fill a
 * GPU (≈ 256 workgroups in all) while each layer keeps at least 1,024 k (64 tile steps); the chunk
 * is a whole number of tile steps.
 */
export function weightSplits(M: number, N: number, K: number): { splits: number; chunk: number } {
  const tiles = Math.ceil(M / CONV_TILE) * Math.ceil(N / (16 * nTileOf(N)));
  const wanted = Math.max(1, Math.min(Math.ceil(256 / tiles), Math.floor(K / 1024)));
  const chunk = Math.ceil(K / wanted / 16) * 16;
  return { splits: Math.ceil(K / chunk), chunk };
}
