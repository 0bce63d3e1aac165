import type { KernelSpec } from './stream.js';
import { ELEM, ROW } from './wgsl_elementwise.js';
import { REDUCE64 } from './wgsl_reduce.js';

/**
 * WGSL of the dense and neural-network kernels: tiled GEMM, direct convolution and its backward,
 * pooling, batch and layer norm, embedding and the optimizers.
 */

/**
 * GEMM tile: 64×64 outputs per workgroup of 16×16 invocations (4×4 each), K in steps of 16.
 * Neighbouring invocations load neighbouring elements of each operand's layout (along k for A and
 * Bᵀ, along m or n otherwise), so the loads coalesce; the rows of workgroup memory have one pad
 * column, so that the k-major stores of A and Bᵀ fall in different banks.
 */
export const GEMM_TILE = 64;

export const gemm: KernelSpec = {
  name: 'gemm', bufs: ['a', 'b', 'c', 'bias'],
  params: [['M', 'u'], ['N', 'u'], ['K', 'u'], ['transA', 'u'], ['transB', 'u'], ['alpha', 'f'], ['beta', 'f'],
    ['sA', 'u'], ['sB', 'u'], ['sC', 'u'], ['hasBias', 'u']],
  body: `
var<workgroup> As: array<array<f32, 65>, 16>;
var<workgroup> Bs: array<array<f32, 65>, 16>;
@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = P_M(); let N = P_N(); let K = P_K();
  let m0 = wid.y * 64u; let n0 = wid.x * 64u;
  let aBase = wid.z * P_sA(); let bBase = wid.z * P_sB(); let cBase = wid.z * P_sC();
  let tA = P_transA() == 1u; let tB = P_transB() == 1u;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < K; k0 = k0 + 16u) {
    for (var r = 0u; r < 4u; r++) {
      let e = li + r * 256u;
      // (k, m/n) of this element: m or n fastest where that axis is contiguous (Aᵀ, B), else k.
      let kAlong = e / 64u; let xAlong = e % 64u;
      let kAcross = e % 16u; let xAcross = e / 16u;
      let ka = select(kAcross, kAlong, tA); let mm = select(xAcross, xAlong, tA);
      let gka = k0 + ka; let gm = m0 + mm;
      var av = 0.0;
      if (gm < M && gka < K) { av = a_at(aBase + select(gm * K + gka, gka * M + gm, tA)); }
      As[ka][mm] = av;
      let kb = select(kAlong, kAcross, tB); let nn = select(xAlong, xAcross, tB);
      let gkb = k0 + kb; let gn = n0 + nn;
      var bv = 0.0;
      if (gn < N && gkb < K) { bv = b_at(bBase + select(gkb * N + gn, gn * K + gkb, tB)); }
      Bs[kb][nn] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var ar: array<f32, 4>; var br: array<f32, 4>;
      for (var q = 0u; q < 4u; q++) { ar[q] = As[kk][lid.y * 4u + q]; br[q] = Bs[kk][lid.x * 4u + q]; }
      for (var p = 0u; p < 4u; p++) { for (var q = 0u; q < 4u; q++) { acc[p][q] = acc[p][q] + ar[p] * br[q]; } }
    }
    workgroupBarrier();
  }
  for (var p = 0u; p < 4u; p++) {
    let gm = m0 + lid.y * 4u + p;
    if (gm >= M) { continue; }
    for (var q = 0u; q < 4u; q++) {
      let gn = n0 + lid.x * 4u + q;
      if (gn >= N) { continue; }
      let at = cBase + gm * N + gn;
      var v = P_alpha() * acc[p][q];
      if (P_beta() != 0.0) { v = v + P_beta() * c_at(at); }
      if (P_hasBias() == 1u) { v = v + bias_at(gn); }
      c_set(at, v);
    }
  }
}`,
};

/** Geometry words of a convolution (Conv2dGeometry's fields in this order). */
export const CONV_G = `
fn g_batch() -> u32 { return P_g(0u); } fn g_inC() -> u32 { return P_g(1u); } fn g_inH() -> i32 { return i32(P_g(2u)); }
fn g_inW() -> i32 { return i32(P_g(3u)); } fn g_outC() -> u32 { return P_g(4u); } fn g_kH() -> i32 { return i32(P_g(5u)); }
fn g_kW() -> i32 { return i32(P_g(6u)); } fn g_sH() -> i32 { return i32(P_g(7u)); } fn g_sW() -> i32 { return i32(P_g(8u)); }
fn g_pH() -> i32 { return i32(P_g(9u)); } fn g_pW() -> i32 { return i32(P_g(10u)); } fn g_outH() -> i32 { return i32(P_g(11u)); }
fn g_outW() -> i32 { return i32(P_g(12u)); }`;

/** Direct convolution: one invocation per output (b, oc, oy, ox), summing inC·kH·kW products. */
export const conv2d: KernelSpec = {
  name: 'conv2d', bufs: ['x', 'w', 'bias', 'y'], params: [['n', 'u'], ['hasBias', 'u'], ['g', 'u13']],
  body: `${CONV_G}
${ELEM('P_n()')}
  let ow = i32(i % u32(g_outW())); var t = i / u32(g_outW());
  let oh = i32(t % u32(g_outH())); t = t / u32(g_outH());
  let oc = t % g_outC(); let b = t / g_outC();
  var s = 0.0;
  if (P_hasBias() == 1u) { s = bias_at(oc); }
  for (var ic = 0u; ic < g_inC(); ic++) {
    let xPlane = (b * g_inC() + ic) * u32(g_inH() * g_inW());
    let wBase = (oc * g_inC() + ic) * u32(g_kH() * g_kW());
    for (var ky = 0; ky < g_kH(); ky++) {
      let iy = oh * g_sH() - g_pH() + ky;
      if (iy < 0 || iy >= g_inH()) { continue; }
      for (var kx = 0; kx < g_kW(); kx++) {
        let ix = ow * g_sW() - g_pW() + kx;
        if (ix < 0 || ix >= g_inW()) { continue; }
        s += x_at(xPlane + u32(iy * g_inW() + ix)) * w_at(wBase + u32(ky * g_kW() + kx));
      }
    }
  }
  y_set(i, s);
}`,
};

/** gx[b, ic, iy, ix] (+)= Σ over the outputs whose window covers it: the transposed convolution. */
export const conv2dBackwardInput: KernelSpec = {
  name: 'conv2dBackwardInput', bufs: ['gy', 'w', 'gx'], params: [['n', 'u'], ['set', 'u'], ['g', 'u13']],
  body: `${CONV_G}
${ELEM('P_n()')}
  let ix = i32(i % u32(g_inW())); var t = i / u32(g_inW());
  let iy = i32(t % u32(g_inH())); t = t / u32(g_inH());
  let ic = t % g_inC(); let b = t / g_inC();
  var s = 0.0;
  for (var oc = 0u; oc < g_outC(); oc++) {
    let yPlane = (b * g_outC() + oc) * u32(g_outH() * g_outW());
    let wBase = (oc * g_inC() + ic) * u32(g_kH() * g_kW());
    for (var ky = 0; ky < g_kH(); ky++) {
      let ny = iy + g_pH() - ky;
      if (ny < 0 || ny % g_sH() != 0) { continue; }
      let oy = ny / g_sH();
      if (oy >= g_outH()) { continue; }
      for (var kx = 0; kx < g_kW(); kx++) {
        let nx = ix + g_pW() - kx;
        if (nx < 0 || nx % g_sW() != 0) { continue; }
        let ox = nx / g_sW();
        if (ox >= g_outW()) { continue; }
        s += gy_at(yPlane + u32(oy * g_outW() + ox)) * w_at(wBase + u32(ky * g_kW() + kx));
      }
    }
  }
  if (P_set() == 1u) { gx_set(i, s); } else { gx_inc(i, s); }
}`,
};

/** gw[oc, ic, ky, kx] += Σ_{b, oy, ox} gy·x: one workgroup per weight. */
export const conv2dBackwardWeight: KernelSpec = {
  name: 'conv2dBackwardWeight', bufs: ['x', 'gy', 'gw'], params: [['n', 'u'], ['g', 'u13']],
  body: `${CONV_G}
${REDUCE64}
${ROW}
  if (row >= P_n()) { return; }
  let kx = i32(row % u32(g_kW())); var t = row / u32(g_kW());
  let ky = i32(t % u32(g_kH())); t = t / u32(g_kH());
  let ic = t % g_inC(); let oc = t / g_inC();
  let ohw = u32(g_outH() * g_outW());
  let total = g_batch() * ohw;
  var s = 0.0;
  for (var e = li; e < total; e += 64u) {
    let b = e / ohw; let cell = e % ohw;
    let oy = i32(cell / u32(g_outW())); let ox = i32(cell % u32(g_outW()));
    let iy = oy * g_sH() - g_pH() + ky; let ix = ox * g_sW() - g_pW() + kx;
    if (iy < 0 || iy >= g_inH() || ix < 0 || ix >= g_inW()) { continue; }
    s += gy_at((b * g_outC() + oc) * ohw + cell) * x_at((b * g_inC() + ic) * u32(g_inH() * g_inW()) + u32(iy * g_inW() + ix));
  }
  let r = wg_sum(li, s);
  if (li == 0u) { gw_inc(row, r); }
}`,
};

/** Σ over (outer, inner) per channel of a [outer, C, inner] view, added into out[c] (bias gradients). */
export const channelSum: KernelSpec = {
  name: 'channelSum', bufs: ['x', 'out'], params: [['outer', 'u'], ['C', 'u'], ['inner', 'u']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_C()) { return; }
  let total = P_outer() * P_inner();
  var s = 0.0;
  for (var e = li; e < total; e += 64u) {
    let o = e / P_inner(); let ii = e % P_inner();
    s += x_at((o * P_C() + row) * P_inner() + ii);
  }
  let r = wg_sum(li, s);
  if (li == 0u) { out_inc(row, r); }
}`,
};

/** Geometry words of a pooling (Pool2dGeometry's fields in this order). */
const POOL_G = `
fn g_planes() -> u32 { return P_g(0u) * P_g(1u); } fn g_inH() -> i32 { return i32(P_g(2u)); } fn g_inW() -> i32 { return i32(P_g(3u)); }
fn g_kH() -> i32 { return i32(P_g(4u)); } fn g_kW() -> i32 { return i32(P_g(5u)); } fn g_sH() -> i32 { return i32(P_g(6u)); }
fn g_sW() -> i32 { return i32(P_g(7u)); } fn g_pH() -> i32 { return i32(P_g(8u)); } fn g_pW() -> i32 { return i32(P_g(9u)); }
fn g_outH() -> i32 { return i32(P_g(10u)); } fn g_outW() -> i32 { return i32(P_g(11u)); }
fn divisor(oy: i32, ox: i32) -> f32 {
  let ys = oy * g_sH() - g_pH(); let xs = ox * g_sW() - g_pW();
  return f32((min(ys + g_kH(), g_inH() + g_pH()) - ys) * (min(xs + g_kW(), g_inW() + g_pW()) - xs));
}`;

/** Max (mode 0), max of relu (mode 1) or average (mode 2) pooling: one invocation per output. */
export const pool2d: KernelSpec = {
  name: 'pool2d', bufs: ['x', 'y', 'arg'], params: [['n', 'u'], ['mode', 'u'], ['g', 'u12']],
  body: `${POOL_G}
${ELEM('P_n()')}
  let ohw = u32(g_outH() * g_outW());
  let plane = (i / ohw) * u32(g_inH() * g_inW());
  let cell = i % ohw;
  let oy = i32(cell / u32(g_outW())); let ox = i32(cell % u32(g_outW()));
  let ys = oy * g_sH() - g_pH(); let xs = ox * g_sW() - g_pW();
  var best = 0.0; var arg = -1; var s = 0.0;
  for (var iy = max(ys, 0); iy < min(ys + g_kH(), g_inH()); iy++) {
    for (var ix = max(xs, 0); ix < min(xs + g_kW(), g_inW()); ix++) {
      var v = x_at(plane + u32(iy * g_inW() + ix));
      s += v;
      if (P_mode() == 1u) { v = select(0.0, v, v > 0.0); }
      if (v > best || arg < 0) { best = v; arg = iy * g_inW() + ix; }
    }
  }
  if (P_mode() == 2u) { y_set(i, s / divisor(oy, ox)); return; }
  y_set(i, best);
  arg_seti(i, select(arg, -1, P_mode() == 1u && !(best > 0.0)));
}`,
};

/** gx[p, iy, ix] (+)= Σ over the windows covering it: of gy where argmax points here (max), or gy/divisor (avg, mode 2). */
export const pool2dBackward: KernelSpec = {
  name: 'pool2dBackward', bufs: ['gy', 'arg', 'gx'], params: [['n', 'u'], ['mode', 'u'], ['set', 'u'], ['g', 'u12']],
  body: `${POOL_G}
${ELEM('P_n()')}
  let ihw = u32(g_inH() * g_inW());
  let p = i / ihw; let cell = i32(i % ihw);
  let iy = cell / g_inW(); let ix = cell % g_inW();
  let ohw = u32(g_outH() * g_outW());
  var s = 0.0;
  let oy0 = max(0, (iy + g_pH() - g_kH() + g_sH()) / g_sH());
  let ox0 = max(0, (ix + g_pW() - g_kW() + g_sW()) / g_sW());
  for (var oy = oy0; oy < g_outH(); oy++) {
    let ys = oy * g_sH() - g_pH();
    if (ys > iy) { break; }
    if (iy >= ys + g_kH()) { continue; }
    for (var ox = ox0; ox < g_outW(); ox++) {
      let xs = ox * g_sW() - g_pW();
      if (xs > ix) { break; }
      if (ix >= xs + g_kW()) { continue; }
      let o = p * ohw + u32(oy * g_outW() + ox);
      if (P_mode() == 2u) { s += gy_at(o) / divisor(oy, ox); }
      else if (arg_int(o) == cell) { s += gy_at(o); }
    }
  }
  if (P_set() == 1u) { gx_set(i, s); } else { gx_inc(i, s); }
}`,
};

/** Batch-norm statistics per channel (training): mean, invStd, running mean and unbiased variance. */
export const batchNormStats: KernelSpec = {
  name: 'batchNormStats', bufs: ['x', 'mean', 'invStd', 'rMean', 'rVar'], params: [['outer', 'u'], ['C', 'u'], ['inner', 'u'], ['momentum', 'f'], ['eps', 'f']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_C()) { return; }
  let total = P_outer() * P_inner();
  var s = 0.0;
  for (var e = li; e < total; e += 64u) { s += x_at(((e / P_inner()) * P_C() + row) * P_inner() + e % P_inner()); }
  let mu = wg_sum(li, s) / f32(total);
  var q = 0.0;
  for (var e = li; e < total; e += 64u) { let d = x_at(((e / P_inner()) * P_C() + row) * P_inner() + e % P_inner()) - mu; q += d * d; }
  let sq = wg_sum(li, q);
  if (li == 0u) {
    let variance = sq / f32(total);
    mean_set(row, mu);
    invStd_set(row, 1.0 / sqrt(variance + P_eps()));
    let unbiased = select(variance, sq / f32(total - 1u), total > 1u);
    let mo = P_momentum();
    rMean_set(row, (1.0 - mo) * rMean_at(row) + mo * mu);
    rVar_set(row, (1.0 - mo) * rVar_at(row) + mo * unbiased);
  }
}`,
};

export const batchNormEvalStats: KernelSpec = {
  name: 'batchNormEvalStats', bufs: ['rMean', 'rVar', 'mean', 'invStd'], params: [['C', 'u'], ['eps', 'f']],
  body: `${ELEM('P_C()')}
  mean_set(i, rMean_at(i));
  invStd_set(i, 1.0 / sqrt(rVar_at(i) + P_eps()));
}`,
};

export const batchNormApply: KernelSpec = {
  name: 'batchNormApply', bufs: ['x', 'gamma', 'beta', 'mean', 'invStd', 'y'], params: [['n', 'u'], ['C', 'u'], ['inner', 'u'], ['relu', 'u']],
  body: `${ELEM('P_n()')}
  let c = (i / P_inner()) % P_C();
  var v = (x_at(i) - mean_at(c)) * (invStd_at(c) * gamma_at(c)) + beta_at(c);
  if (P_relu() == 1u) { v = select(0.0, v, v > 0.0); }
  y_set(i, v);
}`,
};

/** Per channel: sums[c] = Σ g, sums[C + c] = Σ g·x̂ (g masked by reluY > 0 when given); gGamma += Σ g·x̂, gBeta += Σ g. */
export const batchNormGradSums: KernelSpec = {
  name: 'batchNormGradSums', bufs: ['x', 'gy', 'mean', 'invStd', 'reluY', 'sums', 'gGamma', 'gBeta'],
  params: [['outer', 'u'], ['C', 'u'], ['inner', 'u'], ['masked', 'u']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_C()) { return; }
  let total = P_outer() * P_inner();
  let mu = mean_at(row); let is = invStd_at(row);
  var sg = 0.0; var sgx = 0.0;
  for (var e = li; e < total; e += 64u) {
    let at = ((e / P_inner()) * P_C() + row) * P_inner() + e % P_inner();
    var g = gy_at(at);
    if (P_masked() == 1u && !(reluY_at(at) > 0.0)) { g = 0.0; }
    sg += g; sgx += g * (x_at(at) - mu) * is;
  }
  let a = wg_sum(li, sg);
  let b = wg_sum(li, sgx);
  if (li == 0u) { sums_set(row, a); sums_set(P_C() + row, b); gGamma_inc(row, b); gBeta_inc(row, a); }
}`,
};

export const batchNormGradInput: KernelSpec = {
  name: 'batchNormGradInput', bufs: ['x', 'gy', 'gamma', 'mean', 'invStd', 'reluY', 'sums', 'gx'],
  params: [['n', 'u'], ['C', 'u'], ['inner', 'u'], ['masked', 'u'], ['set', 'u'], ['m', 'f']],
  body: `${ELEM('P_n()')}
  let c = (i / P_inner()) % P_C();
  var g = gy_at(i);
  if (P_masked() == 1u && !(reluY_at(i) > 0.0)) { g = 0.0; }
  let is = invStd_at(c);
  let xhat = (x_at(i) - mean_at(c)) * is;
  let m = P_m();
  let v = (gamma_at(c) * is / m) * (m * g - sums_at(c) - xhat * sums_at(P_C() + c));
  if (P_set() == 1u) { gx_set(i, v); } else { gx_inc(i, v); }
}`,
};

/** Eval-mode batch-norm backward: per channel gGamma += Σ g·x̂, gBeta += Σ g. */
export const batchNormEvalGradSums: KernelSpec = {
  name: 'batchNormEvalGradSums', bufs: ['x', 'gy', 'mean', 'invStd', 'gGamma', 'gBeta'], params: [['outer', 'u'], ['C', 'u'], ['inner', 'u']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_C()) { return; }
  let total = P_outer() * P_inner();
  var sg = 0.0; var sgx = 0.0;
  for (var e = li; e < total; e += 64u) {
    let at = ((e / P_inner()) * P_C() + row) * P_inner() + e % P_inner();
    let g = gy_at(at);
    sg += g; sgx += g * (x_at(at) - mean_at(row)) * invStd_at(row);
  }
  let a = wg_sum(li, sg);
  let b = wg_sum(li, sgx);
  if (li == 0u) { gGamma_inc(row, b); gBeta_inc(row, a); }
}`,
};

export const batchNormEvalGradInput: KernelSpec = {
  name: 'batchNormEvalGradInput', bufs: ['gy', 'gamma', 'invStd', 'gx'], params: [['n', 'u'], ['C', 'u'], ['inner', 'u']],
  body: `${ELEM('P_n()')}
  let c = (i / P_inner()) % P_C();
  gx_inc(i, gy_at(i) * gamma_at(c) * invStd_at(c));
}`,
};

export const layerNorm: KernelSpec = {
  name: 'layerNorm', bufs: ['x', 'gamma', 'beta', 'y', 'mean', 'invStd'], params: [['rows', 'u'], ['cols', 'u'], ['eps', 'f']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_rows()) { return; }
  let off = row * P_cols(); let n = P_cols();
  var s = 0.0;
  for (var j = li; j < n; j += 64u) { s += x_at(off + j); }
  let mu = wg_sum(li, s) / f32(n);
  var q = 0.0;
  for (var j = li; j < n; j += 64u) { let d = x_at(off + j) - mu; q += d * d; }
  let is = 1.0 / sqrt(wg_sum(li, q) / f32(n) + P_eps());
  for (var j = li; j < n; j += 64u) { y_set(off + j, (x_at(off + j) - mu) * is * gamma_at(j) + beta_at(j)); }
  if (li == 0u) { mean_set(row, mu); invStd_set(row, is); }
}`,
};

export const layerNormGradInput: KernelSpec = {
  name: 'layerNormGradInput', bufs: ['x', 'gamma', 'mean', 'invStd', 'gy', 'gx'], params: [['rows', 'u'], ['cols', 'u']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_rows()) { return; }
  let off = row * P_cols(); let n = P_cols();
  let mu = mean_at(row); let is = invStd_at(row);
  var sg = 0.0; var sgx = 0.0;
  for (var j = li; j < n; j += 64u) {
    let g = gy_at(off + j) * gamma_at(j);
    sg += g; sgx += g * (x_at(off + j) - mu) * is;
  }
  let a = wg_sum(li, sg);
  let b = wg_sum(li, sgx);
  for (var j = li; j < n; j += 64u) {
    let xhat = (x_at(off + j) - mu) * is;
    gx_inc(off + j, (is / f32(n)) * (f32(n) * gy_at(off + j) * gamma_at(j) - a - xhat * b));
  }
}`,
};

/** Per column j: gGamma[j] += Σ_r gy·x̂, gBeta[j] += Σ_r gy. */
export const layerNormGradParams: KernelSpec = {
  name: 'layerNormGradParams', bufs: ['x', 'mean', 'invStd', 'gy', 'gGamma', 'gBeta'], params: [['rows', 'u'], ['cols', 'u']],
  body: `${REDUCE64}
${ROW}
  if (row >= P_cols()) { return; }
  var sg = 0.0; var sgx = 0.0;
  for (var r = li; r < P_rows(); r += 64u) {
    let at = r * P_cols() + row;
    let g = gy_at(at);
    sg += g; sgx += g * (x_at(at) - mean_at(r)) * invStd_at(r);
  }
  let a = wg_sum(li, sg);
  let b = wg_sum(li, sgx);
  if (li == 0u) { gGamma_inc(row, b); gBeta_inc(row, a); }
}`,
};

export const embedding: KernelSpec = {
  name: 'embedding', bufs: ['table', 'ids', 'y'], params: [['n', 'u'], ['dim', 'u']],
  body: `${ELEM('P_n()')}
  let r = i / P_dim(); let d = i % P_dim();
  y_set(i, table_at(u32(ids_int(r)) * P_dim() + d));
}`,
};

/** One invocation per column walks the ids in order: repeated ids add up without atomics. */
export const embeddingBackward: KernelSpec = {
  name: 'embeddingBackward', bufs: ['gy', 'ids', 'gt'], params: [['count', 'u'], ['dim', 'u']],
  body: `${ELEM('P_dim()')}
  for (var r = 0u; r < P_count(); r++) { gt_inc(u32(ids_int(r)) * P_dim() + i, gy_at(r * P_dim() + i)); }
}`,
};

export const sgd: KernelSpec = {
  name: 'sgd', bufs: ['p', 'g', 'buf'],
  params: [['n', 'u'], ['lr', 'f'], ['momentum', 'f'], ['dampening', 'f'], ['wd', 'f'], ['nesterov', 'u'], ['first', 'u'], ['hasBuf', 'u']],
  body: `${ELEM('P_n()')}
  var d = g_at(i) + P_wd() * p_at(i);
  if (P_momentum() != 0.0 && P_hasBuf() == 1u) {
    var b = d;
    if (P_first() == 0u) { b = P_momentum() * buf_at(i) + (1.0 - P_dampening()) * d; }
    buf_set(i, b);
    d = select(b, d + P_momentum() * b, P_nesterov() == 1u);
  }
  p_set(i, p_at(i) - P_lr() * d);
}`,
};

export const adam: KernelSpec = {
  name: 'adam', bufs: ['p', 'g', 'm', 'v'],
  params: [['n', 'u'], ['beta1', 'f'], ['beta2', 'f'], ['eps', 'f'], ['stepSize', 'f'], ['sqrtBc2', 'f'], ['decay', 'f'], ['l2', 'f']],
  body: `${ELEM('P_n()')}
  let pv = p_at(i);
  let g = g_at(i) + P_l2() * pv;
  let mi = P_beta1() * m_at(i) + (1.0 - P_beta1()) * g;
  let vi = P_beta2() * v_at(i) + (1.0 - P_beta2()) * g * g;
  m_set(i, mi);
  v_set(i, vi);
  p_set(i, pv * P_decay() - (P_stepSize() * mi) / (sqrt(vi) / P_sqrtBc2() + P_eps()));
}`,
};
