/**
 * bfloat16: the high 16 bits of a float32 (8-bit exponent, 7-bit mantissa), rounded to nearest,
 * ties to even. Same range as float32, about 3 significant digits. NaN stays NaN.
 */
import { fromBf16BitsInto } from '../../util/float_formats.js';
import type { Codec } from './codec.js';

export const bf16: Codec = {
  name: 'bf16',
  encodedBytes: (floats) => 2 * floats,
  encode(src, out) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    const half = halves(out, src.length);
    for (let i = 0; i < bits.length; i++) {
      const x = bits[i];
      // NaN: keep it a (quiet) NaN; rounding could carry it into infinity.
      if ((x & 0x7fffffff) > 0x7f800000) half[i] = (x >>> 16) | 0x40;
      else half[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  },
  decode(src, out) {
    fromBf16BitsInto(halves(src, out.length), out);
  },
};

/** A Uint16Array over `bytes` (copied when unaligned). */
export function halves(bytes: Uint8Array, count: number): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  const copy = new Uint16Array(count);
  new Uint8Array(copy.buffer).set(bytes.subarray(0, 2 * count));
  return copy;
}
