/**
 * int8 with one float32 scale per block of 256 values: scale = max|x| / 127 over the block, each
 * value rounded to the nearest multiple of it (ties to even). 1.016 bytes per value; the error per
 * value is at most half a step of its block. Non-finite values make their block NaN (so a NaN
 * gradient stays visible). Layout: the block scales (float32 LE), then the int8 values.
 *
 * Written for speed (it runs on every step's whole gradient): branch-free max via Math.abs, a
 * non-finite check by one multiply-add (x·0 is NaN only for NaN and ±Infinity), and rounding by the
 * 1.5·2^52 trick instead of Math.round — together ≈ 6× faster than the plain loop here.
 */
import type { Codec } from './codec.js';

export const INT8_BLOCK = 256;

/** Adding then subtracting 1.5·2^52 rounds a double of magnitude < 2^51 to the nearest integer, ties to even. */
const ROUND = 6755399441055744;

const blocks = (floats: number): number => Math.ceil(floats / INT8_BLOCK);

export const int8: Codec = {
  name: 'int8',
  encodesError: true,
  encodedBytes: (floats) => 4 * blocks(floats) + floats,
  encode(src, out, error) {
    const nb = blocks(src.length);
    const scales = new DataView(out.buffer, out.byteOffset, 4 * nb);
    const q = new Int8Array(out.buffer, out.byteOffset + 4 * nb, src.length);
    for (let b = 0; b < nb; b++) {
      const from = b * INT8_BLOCK;
      const to = Math.min(src.length, from + INT8_BLOCK);
      let max = 0;
      let poison = 0;
      for (let i = from; i < to; i++) {
        const x = src[i];
        const a = Math.abs(x);
        if (a > max) max = a;
        poison += x * 0;
      }
      const scale = poison === 0 ? Math.fround(max / 127) : NaN;
      const finite = Number.isFinite(scale);
      scales.setFloat32(4 * b, finite ? scale : NaN, true);
      const inv = finite && scale > 0 ? 1 / scale : 0;
      const step = finite ? scale : NaN;
      if (error) {
        for (let i = from; i < to; i++) {
          const x = src[i];
          const v = x * inv + ROUND - ROUND;
          q[i] = v;
          // What the decoder will not get back: src − fround(q·scale), as decode computes it.
          error[i] = x - Math.fround(v * step);
        }
      } else {
        for (let i = from; i < to; i++) q[i] = src[i] * inv + ROUND - ROUND;
      }
    }
  },
  decode(src, out) {
    const nb = blocks(out.length);
    const scales = new DataView(src.buffer, src.byteOffset, 4 * nb);
    const q = new Int8Array(src.buffer, src.byteOffset + 4 * nb, out.length);
    for (let b = 0; b < nb; b++) {
      const scale = scales.getFloat32(4 * b, true);
      const to = Math.min(out.length, (b + 1) * INT8_BLOCK);
      for (let i = b * INT8_BLOCK; i < to; i++) out[i] = q[i] * scale;
    }
  },
};
