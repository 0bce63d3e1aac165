/**
 * The reductions a one-workgroup-per-row kernel uses over its 64 invocations: wg_sum, wg_max and
 * wg_argmax. Kernel bodies include the marker REDUCE64; stream.ts's wgslOf puts one of two
 * implementations in its place when it compiles the kernel:
 *
 * - workgroup memory (every device): a tree over a 64-slot array, a barrier per level (8 barriers);
 * - subgroups (a device created with the `subgroups` feature): each subgroup reduces in registers
 *   (subgroupAdd / subgroupMax), its first invocation puts the result in a slot, and after one
 *   barrier every subgroup reduces the slots again (2 barriers; wg_argmax 3). WGSL does not say which
 *   invocations form a subgroup, so the slots are indexed by local_invocation_index (the smallest
 *   one of each subgroup writes; the others write the neutral element) and read in a fixed pattern:
 *   the result does not depend on the subgroup size or on which invocations share a subgroup
 *   beyond float32 rounding, and it is the same on every run of the same device.
 *
 * Every invocation of the workgroup must call them (uniform control flow), with its
 * local_invocation_index `li`. wg_sum and wg_max return the result to every invocation; wg_argmax
 * leaves it in red[0] / redi[0] for invocation 0 (the only one that reads it).
 */

/** Replaced by the chosen implementation when a kernel is compiled. */
export const REDUCE64 = '//! reduce64';

/** The tree over workgroup memory. */
const WORKGROUP_TREE = `
var<workgroup> red: array<f32, 64>;
var<workgroup> redi: array<i32, 64>;
fn wg_sum(li: u32, v: f32) -> f32 {
  workgroupBarrier();
  red[li] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s / 2u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  return red[0];
}
fn wg_max(li: u32, v: f32) -> f32 {
  workgroupBarrier();
  red[li] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s / 2u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  return red[0];
}
/** Max with the smallest index attaining it (an index of -1 is an empty slot). */
fn wg_argmax(li: u32, v: f32, k: i32) {
  workgroupBarrier();
  red[li] = v;
  redi[li] = k;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s / 2u) {
    if (li < s) {
      let a = red[li]; let b = red[li + s]; let ka = redi[li]; let kb = redi[li + s];
      if (kb >= 0 && (ka < 0 || b > a || (b == a && kb < ka))) { red[li] = b; redi[li] = kb; }
    }
    workgroupBarrier();
  }
}`;

/** Subgroup operations within each subgroup, one slot per subgroup across them. */
const SUBGROUP = `
var<workgroup> red: array<f32, 64>;
var<workgroup> redi: array<i32, 64>;
/** -inf (a runtime value: WGSL refuses an infinite constant). */
fn neg_inf() -> f32 { var bits = 0xff800000u; return bitcast<f32>(bits); }
/** True for the smallest local index of this subgroup: the one that writes its slot. */
fn sg_leader(li: u32) -> bool { return li == subgroupMin(li); }
/** Stage two: this invocation's place among its subgroup's active ones, and their count. */
fn sg_lane() -> u32 { return subgroupExclusiveAdd(1u); }
fn sg_width() -> u32 { return subgroupAdd(1u); }
fn wg_sum(li: u32, v: f32) -> f32 {
  let t = subgroupAdd(v);
  workgroupBarrier();
  red[li] = select(0.0, t, sg_leader(li));
  workgroupBarrier();
  let w = sg_width();
  var s = 0.0;
  for (var k = sg_lane(); k < 64u; k += w) { s += red[k]; }
  return subgroupAdd(s);
}
fn wg_max(li: u32, v: f32) -> f32 {
  let t = subgroupMax(v);
  workgroupBarrier();
  red[li] = select(neg_inf(), t, sg_leader(li));
  workgroupBarrier();
  let w = sg_width();
  var m = neg_inf();
  for (var k = sg_lane(); k < 64u; k += w) { m = max(m, red[k]); }
  return subgroupMax(m);
}
/** The best (value, index) of this subgroup's (v, k): the largest value, the smallest index among its ties; k < 0 is empty. */
fn sg_best(v: f32, k: i32) -> vec2<f32> {
  let live = k >= 0;
  let m = subgroupMax(select(neg_inf(), v, live));
  let idx = subgroupMin(select(0x7fffffff, k, live && v == m));
  return vec2<f32>(m, bitcast<f32>(select(-1, idx, idx != 0x7fffffff)));
}
/** Max with the smallest index attaining it (an index of -1 is an empty slot). */
fn wg_argmax(li: u32, v: f32, k: i32) {
  let b = sg_best(v, k);
  workgroupBarrier();
  let lead = sg_leader(li);
  red[li] = select(neg_inf(), b.x, lead);
  redi[li] = select(-1, bitcast<i32>(b.y), lead);
  workgroupBarrier();
  let w = sg_width();
  var best = neg_inf(); var arg = -1;
  for (var s = sg_lane(); s < 64u; s += w) {
    let kb = redi[s]; let vb = red[s];
    if (kb >= 0 && (arg < 0 || vb > best || (vb == best && kb < arg))) { best = vb; arg = kb; }
  }
  let all = sg_best(best, arg);
  workgroupBarrier();
  if (li == 0u) { red[0] = all.x; redi[0] = bitcast<i32>(all.y); }
}`;

/** The reductions' WGSL for a kernel compiled with or without subgroups. */
export function reduce64(subgroups: boolean): string {
  return subgroups ? SUBGROUP : WORKGROUP_TREE;
}

/** Whether a kernel's WGSL uses the reductions (then it needs `enable subgroups;` on that path). */
export function usesReduce64(body: string): boolean {
  return body.includes(REDUCE64);
}
