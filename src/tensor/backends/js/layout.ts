import type { Buf } from '../../backend.js';

export function subBuffer(x: Buf, offset: number, length: number): Buf {
  return x.subarray(offset, offset + length);
}

/**
 * Strided copy of an n-d view into another n-d view (transpose, permute, slice, concat). The last
 * dimension is the inner loop; outer dimensions are walked with an odometer.
 */
export function stridedCopy(
  src: Buf, srcOffset: number, srcStrides: number[], dst: Buf, dstOffset: number,
  dstStrides: number[], shape: number[], accumulate: boolean,
): void {
  const nd = shape.length;
  if (nd === 0) {
    dst[dstOffset] = accumulate ? dst[dstOffset] + src[srcOffset] : src[srcOffset];
    return;
  }
  let total = 1;
  for (const s of shape) total *= s;
  if (total === 0) return;
  const inner = shape[nd - 1];
  const ss = srcStrides[nd - 1];
  const ds = dstStrides[nd - 1];
  const rows = total / inner;
  const idx = new Array<number>(nd - 1).fill(0);
  let si = srcOffset;
  let di = dstOffset;
  for (let r = 0; r < rows; r++) {
    if (accumulate) for (let j = 0; j < inner; j++) dst[di + j * ds] += src[si + j * ss];
    else if (ss === 1 && ds === 1) dst.set(src.subarray(si, si + inner), di);
    else for (let j = 0; j < inner; j++) dst[di + j * ds] = src[si + j * ss];
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      si += srcStrides[d];
      di += dstStrides[d];
      if (idx[d] < shape[d]) break;
      si -= srcStrides[d] * shape[d];
      di -= dstStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}
