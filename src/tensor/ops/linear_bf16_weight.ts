/**
 * linear at float32 over a weight held in bfloat16 (issue 50: a BF16 folder generating in fp32 held
 * a float32 copy of every matrix, 2 bytes a weight more than the file): y = x·Wᵀ (+ bias) with W
 * widened exactly, a tile of TILE_ELEMENTS at a time, into one float32 scratch, so the product is
 * the float32 GEMM of the widened weight's rows and no float32 copy of W is held. Widening is exact
 * (bfloat16 is float32's top half), so each tile's product is the one a float32 weight of the same
 * values gives, tile by tile. Frozen weights only (inference): the weight gets no gradient; x's
 * gradient, where asked, goes through the same tiles. A few rows of x (decode) take the backend's
 * thin kernel where it has one (src/native/linear_widened.cc: W read once at 2 bytes a weight).
 */
import { record } from '../autograd.js';
import { backendFor, kernelsFor } from '../dispatch.js';
import type { DeviceBuffer } from '../storage.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';

/** Elements of a widened tile (1 MB of float32: it stays in a core's cache while the GEMM reads it). */
const TILE_ELEMENTS = 1 << 18;

/** Rows of W a tile holds at a row length of K. */
export function tileRows(N: number, K: number): number {
  return Math.max(1, Math.min(N, Math.floor(TILE_ELEMENTS / K)));
}

export function linearOverBf16Weight(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  if (weight.requiresGrad) throw new Error(`linear: ${weight.name || 'the weight'} is held in bfloat16 for inference: it gets no gradient at float32 (train it in float32, or a LoRA adapter beside it)`);
  const [N, K] = [weight.shape[0], weight.shape[1]];
  const M = x.size / K;
  const k = kernelsFor({ device: x.device, dtype: 'float32' });
  const out = new Tensor(allocUninit('float32', M * N, x.device), [...x.shape.slice(0, -1), N]);
  const thin = backendFor({ device: x.device, dtype: 'float32' }).bfloat16?.linearWidenedThin;
  if (!thin?.(M, N, K, x.buffer, weight.buffer, out.buffer, bias?.buffer ?? null)) widenedTiles(x, weight, bias, out, M, N, K);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (gy) => {
    if (x.requiresGrad) inputGradient(gy, weight, M, N, K, x.ensureGrad());
    if (bias?.requiresGrad) {
      const gb = allocStorage('float32', N, x.device).buffer;
      k.reduceSum(gy, 1, M, N, gb);
      k.axpy(1, gb, bias.ensureGrad());
    }
  }, false);
}

/** y = x·widen(W)ᵀ (+ bias) through tiles of W's rows widened into one float32 scratch and the float32 GEMM. */
function widenedTiles(x: Tensor, weight: Tensor, bias: Tensor | null, out: Tensor, M: number, N: number, K: number): void {
  const k = kernelsFor({ device: x.device, dtype: 'float32' });
  // Several rows of x over several tiles: a tile's product lands in its own [M, rows] block, then into its columns of y.
  const T = tileRows(N, K);
  const block = M > 1 && T < N ? allocUninit('float32', M * T, x.device).buffer : null;
  forEachWidenedTile(weight, N, K, (w, n0, rows) => {
    const b = bias ? k.subBuffer(bias.buffer, n0, rows) : null;
    if (block === null) {
      // One row of x (its columns [n0, n0 + rows) are contiguous), or one tile (all of y).
      k.gemm(false, true, M, rows, K, 1, x.buffer, 0, w, 0, 0, M === 1 ? k.subBuffer(out.buffer, n0, rows) : out.buffer, 0, 1, b);
      return;
    }
    const g = k.subBuffer(block, 0, M * rows);
    k.gemm(false, true, M, rows, K, 1, x.buffer, 0, w, 0, 0, g, 0, 1, b);
    k.stridedCopy(g, 0, [rows, 1], out.buffer, n0, [N, 1], [M, rows], false);
  });
}

/** gx [M, K] += gy [M, N] · W [N, K], over the same widened tiles: gy's columns of a tile times its rows. */
function inputGradient(gy: DeviceBuffer, weight: Tensor, M: number, N: number, K: number, gx: DeviceBuffer): void {
  const k = kernelsFor({ device: weight.device, dtype: 'float32' });
  const block = allocUninit('float32', M * tileRows(N, K), weight.device).buffer;
  forEachWidenedTile(weight, N, K, (w, n0, rows) => {
    const g = k.subBuffer(block, 0, M * rows);
    k.stridedCopy(gy, n0, [N, 1], g, 0, [rows, 1], [M, rows], false);
    k.gemm(false, false, M, K, rows, 1, g, 0, w, 0, 1, gx, 0, 1);
  });
}

/** Each tile of W's rows [n0, n0 + rows), widened exactly into one float32 scratch (`w`, rows × K), in row order. */
function forEachWidenedTile(weight: Tensor, N: number, K: number, visit: (w: DeviceBuffer, n0: number, rows: number) => void): void {
  const k = kernelsFor({ device: weight.device, dtype: 'float32' });
  const T = tileRows(N, K);
  const tile = allocUninit('float32', T * K, weight.device).buffer;
  for (let n0 = 0; n0 < N; n0 += T) {
    const rows = Math.min(T, N - n0);
    const w = k.subBuffer(tile, 0, rows * K);
    k.fromBf16(k.subBuffer(weight.buffer, n0 * K, rows * K), w);
    visit(w, n0, rows);
  }
}
