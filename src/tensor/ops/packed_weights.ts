/**
 * bf16 weights that do not change, kept in the backend's product layout across calls.
 *
 * oneDNN's bf16 matmul lays a plain row-major weight out in its blocked (VNNI/AMX) layout inside
 * every call, so a weight used many times (LoRA's frozen base held in bf16, a generation's cast
 * weights in a CastCache) is re-laid-out on every product. A tensor marked here (markUnchanging)
 * is packed on its second x·Wᵀ of more than one row and the packed copy reused while its storage is the same and its
 * version (Storage.version: writes through the handle) has not moved; a new storage (holdBaseInBf16
 * swaps one in) or a write packs again. The packed copy lives as long as the storage does (a weak
 * map) and costs as much memory as the bf16 weight itself.
 *
 * The dX product (dY·W, a frozen weight's backward) packs a second copy in its own layout only for
 * a weight of at least BACKWARD_ROWS rows (a vocabulary head): there the plain product re-lays out
 * the whole [vocab, width] weight every call, and the packed one ran about 1.2× as fast (49,152 × 576,
 * 2,048 rows, one thread, AMX); a LoRA layer's dX gained about 5 %, not worth a second copy.
 */
import type { Bf16Entries, PackedWeight } from '../backend.js';
import { backendFor } from '../dispatch.js';
import type { DeviceBuffer, Storage } from '../storage.js';
import type { Tensor } from '../tensor.js';

interface Packed {
  readonly version: number | undefined;
  /** undefined: seen once, not packed yet; null: the backend has no faster kernel for this weight. */
  readonly packed: PackedWeight | null | undefined;
}

/**
 * Rows up to which a weight keeps its plain copy and the thin kernels (src/native/gemv_bf16*.cc;
 * gemv_bf16.h kThinBf16Rows is the same number), and never packs. bench/gemv_bf16.ts, one thread,
 * SmolLM2-135M's step of 210 products from memory in 4 KB pages (docs/PERFORMANCE.md): the thin AMX
 * kernel ahead of oneDNN's packed product at 2 and 3 rows (16.8-18.3 ms against 18.8-19.3), level at
 * 4, level at best from 8. With a generator's held casts in huge pages (generate/model_casts.ts) it is
 * ahead at 8 too: bench:generate's batch-8 bf16 decode step, A/B with a limit of 4, SmolLM2 35.1-35.3
 * → 32.8-33.3 ms, GPT-2 29.6-30.0 → 25.7-26.4 ms (oneDNN's packed copy is not in huge pages).
 */
export const THIN_ROWS = 8;
/** Rows from which a weight's dX product (dY·W) packs too: a vocabulary head's, not a layer's. */
const BACKWARD_ROWS = 8192;
const unchanging = new WeakSet<Tensor>();
const packs = new WeakMap<Storage, Packed>();
const backwardPacks = new WeakMap<Storage, Packed>();
let enabled = process.env.SMOLCLUSTER_PACKED_WEIGHTS !== '0';

/**
 * Declares that `w` (a bfloat16 weight) changes only through its storage's write() or a new storage,
 * never through a kernel (a frozen weight, a cast held for a generation): its products may use a
 * packed copy.
 */
export function markUnchanging(w: Tensor): void {
  unchanging.add(w);
}

const packAtFirstUse = new WeakSet<Tensor>();

/**
 * markUnchanging, for a weight that will serve many products (a model's bf16 casts held for its
 * life, generate/model_casts.ts): packed on its first x·Wᵀ of more than one row, so the reorder is
 * paid by the first prompt (a warm-up) and not by the second.
 */
export function markLongLived(w: Tensor): void {
  unchanging.add(w);
  packAtFirstUse.add(w);
}

/** Whether packing is on (SMOLCLUSTER_PACKED_WEIGHTS=0 starts a process with it off); returns the setting it replaces. */
export function setWeightPacking(on: boolean): boolean {
  const before = enabled;
  enabled = on;
  return before;
}

/** The bf16 entries of the backend serving w's device (a backend's bf16 products register there). */
function packingOf(w: Tensor): Bf16Entries<DeviceBuffer> | undefined {
  return backendFor({ device: w.device, dtype: 'float32' }).bfloat16 as Bf16Entries<DeviceBuffer> | undefined;
}

/**
 * w's packed copy for x·Wᵀ of M rows (`forward` false: for dY·W); null where none applies. A weight
 * packs on its second use (a long-lived one on its first, markLongLived): one product alone (a
 * generation's prefill, each weight once) would pay the reorder and gain nothing; and up to THIN_ROWS
 * rows (decode at batch 1 to 8) keep the thin kernels, which read the plain weight once: a weight
 * that only ever serves those is never packed.
 */
function packedFor(w: Tensor, M: number, forward = true): PackedWeight | null {
  if (!enabled || M <= THIN_ROWS || w.dtype !== 'bfloat16' || w.ndim !== 2 || !unchanging.has(w)) return null;
  if (!forward && w.shape[0] < BACKWARD_ROWS) return null;
  const packing = packingOf(w);
  if (!packing?.packWeight) return null;
  const storage = w.storage;
  const table = forward ? packs : backwardPacks;
  const held = table.get(storage);
  const current = held !== undefined && held.version === storage.version;
  if (current && held.packed !== undefined) return held.packed;
  // A first use (or the first since a write) only marks the weight, unless it is long-lived.
  if (!current && !packAtFirstUse.has(w)) {
    table.set(storage, { version: storage.version, packed: undefined });
    return null;
  }
  const packed = packing.packWeight(w.buffer, w.shape[0], w.shape[1], forward, M);
  table.set(storage, { version: storage.version, packed });
  return packed;
}

/** Whether w has a packed copy of its current values (tests, and a reading of what packed); `forward` false: its dY·W copy. */
export function isPacked(w: Tensor, forward = true): boolean {
  const held = (forward ? packs : backwardPacks).get(w.storage);
  return held !== undefined && held.packed != null && held.version === w.storage.version;
}

/**
 * out [M, N] = x [M, K] · wᵀ (+ bias) on w's packed copy, when w is marked and the backend takes
 * it; false (out untouched) otherwise, and the caller runs the plain product.
 */
export function packedLinear(x: DeviceBuffer, w: Tensor, M: number, out: DeviceBuffer, bias: DeviceBuffer | null): boolean {
  const packed = packedFor(w, M);
  if (!packed) return false;
  return packingOf(w)!.gemmPacked!(M, x, packed, 0, out, bias);
}

/**
 * gx [M, cols] = gy [M, rows] · w (+ beta·gx) on w's dY·W packed copy: a marked weight of at least
 * BACKWARD_ROWS rows (a vocabulary head) from its second backward on; false (gx untouched) otherwise,
 * and the caller runs the plain product.
 */
export function packedLinearBackward(gy: DeviceBuffer, w: Tensor, M: number, gx: DeviceBuffer, beta: 0 | 1): boolean {
  const packed = packedFor(w, M, false);
  if (!packed) return false;
  return packingOf(w)!.gemmPacked!(M, gy, packed, beta, gx, null);
}
