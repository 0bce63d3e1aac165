import type { KernelSpec } from './stream.js';

/**
 * A register-blocked GEMM for large products: a 128×128 tile of C per workgroup of 16×16
 * invocations, each computing an 8×8 block held in registers (16 vec4 accumulators), K in steps
 * of 8 through workgroup memory stored as vec4 (k-major, so a thread's 4 rows or columns are one
 * vec4 read). 64 multiply-adds per invocation per k against 4 vec4 reads of workgroup memory,
 * where the 64×64 kernel (wgsl_nn.ts `gemm`) does 16 against 8 scalar reads.
 *
 * An invocation's rows are ty·4..ty·4+3 and 64+ty·4..64+ty·4+3 (likewise its columns with tx):
 * neighbouring invocations read neighbouring vec4s of workgroup memory. Global memory is read
 * along whichever axis is contiguous in the operand's layout (k for A and Bᵀ, m for Aᵀ, n for B),
 * as vec4 where the operand allows it (`vecA`/`vecB`: the view's offset, the batch stride and the
 * contiguous extent are multiples of 4), else as 4 scalars. Its buffers are bound as
 * array<vec4<f32>> (KernelSpec.vec4): every GPUBuffer it binds must be a multiple of 16 bytes.
 */
export const BLOCKED_TILE = 128;

/** acc[r·2 + h] += a_r · b_h for the 8 rows r of an invocation (a0: rows 0–3, a1: rows 4–7). */
const FMA = Array.from({ length: 8 }, (_, r) => {
  const a = `${r < 4 ? 'a0' : 'a1'}[${r % 4}]`;
  return `      acc[${r * 2}] = fma(vec4<f32>(${a}), b0, acc[${r * 2}]); acc[${r * 2 + 1}] = fma(vec4<f32>(${a}), b1, acc[${r * 2 + 1}]);`;
}).join('\n');

/**
 * The epilogue, unrolled: each accumulator leaves by a constant index. With a loop indexing acc at
 * run time the kernel ran at 2.0 TFLOP/s on an H100 (4096³), unrolled at 11–12: the driver had
 * kept the accumulators in local memory rather than registers (docs/GPU.md).
 */
const STORE = Array.from({ length: 8 }, (_, r) =>
  `  storeRow4(m0 + ${Math.floor(r / 4) * 64}u + ty * 4u + ${r % 4}u, n0 + tx * 4u, cBase, M, N, acc[${r * 2}], acc[${r * 2 + 1}]);`).join('\n');

export const gemmBlocked: KernelSpec = {
  name: 'gemmBlocked', vec4: true, bufs: ['a', 'b', 'c', 'bias'],
  params: [['M', 'u'], ['N', 'u'], ['K', 'u'], ['transA', 'u'], ['transB', 'u'], ['alpha', 'f'], ['beta', 'f'],
    ['sA', 'u'], ['sB', 'u'], ['sC', 'u'], ['hasBias', 'u'], ['vecA', 'u'], ['vecB', 'u']],
  body: `
var<workgroup> As: array<vec4<f32>, 256>;
var<workgroup> Bs: array<vec4<f32>, 256>;
/** Four consecutive elements of A from flat index i (the first is element e of the run, in bounds when e < extent). */
fn loadA(i: u32, e: u32, extent: u32, inside: bool) -> vec4<f32> {
  if (!inside) { return vec4<f32>(0.0); }
  if (P_vecA() == 1u) { return a_at4(i); }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) { if (e + j < extent) { v[j] = a_at(i + j); } }
  return v;
}
fn loadB(i: u32, e: u32, extent: u32, inside: bool) -> vec4<f32> {
  if (!inside) { return vec4<f32>(0.0); }
  if (P_vecB() == 1u) { return b_at4(i); }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) { if (e + j < extent) { v[j] = b_at(i + j); } }
  return v;
}
/** Row gm's two runs of 4 columns of C (n0 + tx·4 and 64 further): α·acc (+ β·C) (+ bias). */
fn storeRow4(gm: u32, gn0: u32, cBase: u32, M: u32, N: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (gm >= M) { return; }
  for (var j = 0u; j < 4u; j++) {
    storeOne(cBase, gm, gn0 + j, N, lo[j]);
    storeOne(cBase, gm, gn0 + 64u + j, N, hi[j]);
  }
}
fn storeOne(cBase: u32, gm: u32, gn: u32, N: u32, value: f32) {
  if (gn >= N) { return; }
  let at = cBase + gm * N + gn;
  var v = P_alpha() * value;
  if (P_beta() != 0.0) { v = v + P_beta() * c_at(at); }
  if (P_hasBias() == 1u) { v = v + bias_at(gn); }
  c_set(at, v);
}
@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = P_M(); let N = P_N(); let K = P_K();
  let m0 = wid.y * 128u; let n0 = wid.x * 128u;
  let aBase = wid.z * P_sA(); let bBase = wid.z * P_sB(); let cBase = wid.z * P_sC();
  let tA = P_transA() == 1u; let tB = P_transB() == 1u;
  let tx = lid.x; let ty = lid.y;
  var acc: array<vec4<f32>, 16>;
  for (var k0 = 0u; k0 < K; k0 = k0 + 8u) {
    // A's 128×8 slice: 4 elements per invocation, along A's contiguous axis.
    if (tA) {
      let kk = li / 32u; let m4 = (li % 32u) * 4u; let gk = k0 + kk; let gm = m0 + m4;
      As[kk * 32u + li % 32u] = loadA(aBase + gk * M + gm, gm, M, gk < K && gm < M);
    } else {
      let mm = li / 2u; let k4 = (li % 2u) * 4u; let gm = m0 + mm; let gk = k0 + k4;
      let v = loadA(aBase + gm * K + gk, gk, K, gm < M && gk < K);
      for (var j = 0u; j < 4u; j++) { As[(k4 + j) * 32u + mm / 4u][mm % 4u] = v[j]; }
    }
    // B's 8×128 slice.
    if (tB) {
      let nn = li / 2u; let k4 = (li % 2u) * 4u; let gn = n0 + nn; let gk = k0 + k4;
      let v = loadB(bBase + gn * K + gk, gk, K, gn < N && gk < K);
      for (var j = 0u; j < 4u; j++) { Bs[(k4 + j) * 32u + nn / 4u][nn % 4u] = v[j]; }
    } else {
      let kk = li / 32u; let n4 = (li % 32u) * 4u; let gk = k0 + kk; let gn = n0 + n4;
      Bs[kk * 32u + li % 32u] = loadB(bBase + gk * N + gn, gn, N, gk < K && gn < N);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 8u; kk++) {
      let a0 = As[kk * 32u + ty]; let a1 = As[kk * 32u + 16u + ty];
      let b0 = Bs[kk * 32u + tx]; let b1 = Bs[kk * 32u + 16u + tx];
${FMA}
    }
    workgroupBarrier();
  }
${STORE}
}`,
};
