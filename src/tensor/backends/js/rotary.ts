import type { Buf } from '../../backend.js';

/**
 * Rotary position embedding over x [slices, t, d] with cos, sin [t, d/2], in Hugging Face's
 * rotate_half layout: the pair (i, i + d/2) of each row turns by the angle of (t, i).
 */
export function rotary(x: Buf, cos: Buf, sin: Buf, slices: number, t: number, d: number, out: Buf): void {
  rotate(x, cos, sin, slices, t, d, out, 1, false);
}

/** Backward of rotary: gy turned back by the same angles (a rotation's transpose), added into gx. */
export function rotaryBackward(gy: Buf, cos: Buf, sin: Buf, slices: number, t: number, d: number, gx: Buf): void {
  rotate(gy, cos, sin, slices, t, d, gx, -1, true);
}

/** dst = (or +=) src rotated by sign·angle. */
function rotate(src: Buf, cos: Buf, sin: Buf, slices: number, t: number, d: number, dst: Buf, sign: number, accumulate: boolean): void {
  const h = d / 2;
  for (let s = 0; s < slices; s++) {
    for (let p = 0; p < t; p++) {
      const row = (s * t + p) * d;
      const angle = p * h;
      for (let i = 0; i < h; i++) {
        const c = cos[angle + i];
        const sn = sign * sin[angle + i];
        const a = src[row + i];
        const b = src[row + h + i];
        const lo = a * c - b * sn;
        const hi = b * c + a * sn;
        if (accumulate) {
          dst[row + i] += lo;
          dst[row + h + i] += hi;
        } else {
          dst[row + i] = lo;
          dst[row + h + i] = hi;
        }
      }
    }
  }
}
