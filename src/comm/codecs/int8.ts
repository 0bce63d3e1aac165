/**
 * int8 with one float32 scale per block of 256 values: scale = max|x| / 127 over the block, each
 * value rounded to the nearest multiple of it. 1.016 bytes per value; the error per value is at most
 * half a step of its block. Non-finite values make their block NaN (so a NaN gradient stays visible).
 * Layout: the block scales (float32 LE), then the int8 values.
 */
import type { Codec } from './codec.js';

export const INT8_BLOCK = 256;

const blocks = (floats: number): number => Math.ceil(floats / INT8_BLOCK);

export const int8: Codec = {
  name: 'int8',
  encodedBytes: (floats) => 4 * blocks(floats) + floats,
  encode(src, out) {
    const nb = blocks(src.length);
    const scales = new DataView(out.buffer, out.byteOffset, 4 * nb);
    const q = new Int8Array(out.buffer, out.byteOffset + 4 * nb, src.length);
    for (let b = 0; b < nb; b++) {
      const from = b * INT8_BLOCK;
      const to = Math.min(src.length, from + INT8_BLOCK);
      let max = 0;
      for (let i = from; i < to; i++) {
        const a = Math.abs(src[i]);
        if (!(a <= max) && max === max) max = a; // a NaN, once seen, stays
      }
      const scale = Math.fround(max / 127);
      scales.setFloat32(4 * b, Number.isFinite(scale) ? scale : NaN, true);
      const inv = scale > 0 && Number.isFinite(scale) ? 1 / scale : 0;
      for (let i = from; i < to; i++) q[i] = Math.round(src[i] * inv);
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
