/**
 * IEEE half precision (5-bit exponent, 10-bit mantissa), rounded to nearest, ties to even;
 * magnitudes above 65504 become infinity and below 2^-24 zero (subnormals kept). Decoding is one
 * table lookup.
 */
import type { Codec } from './codec.js';
import { halves } from './bf16.js';

let table: Float32Array | null = null;

export const fp16: Codec = {
  name: 'fp16',
  encodedBytes: (floats) => 2 * floats,
  encode(src, out) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    const half = halves(out, src.length);
    for (let i = 0; i < bits.length; i++) half[i] = toHalf(bits[i]);
  },
  decode(src, out) {
    const t = (table ??= decodeTable());
    const half = halves(src, out.length);
    for (let i = 0; i < out.length; i++) out[i] = t[half[i]];
  },
};

/** float32 bits → float16 bits. */
export function toHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return sign | (rest > halfway || (rest === halfway && (h & 1) === 1) ? h + 1 : h);
  }
  const h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa rounds into the exponent (up to infinity), as it should.
  return sign | (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h);
}

function decodeTable(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 31) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return t;
}
