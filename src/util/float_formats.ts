/**
 * The 16-bit float formats published weights ship in, to and from float32 (bit patterns as numbers):
 *
 *   bfloat16  1 sign, 8 exponent, 7 mantissa bits: float32's top half, so widening is exact (a shift)
 *   float16   1 sign, 5 exponent, 10 mantissa bits (IEEE binary16): widening is exact too, subnormals
 *             (down to 2^-24), infinities and NaN included
 *
 * Narrowing rounds to nearest, ties to even (as torch's `.to(torch.bfloat16)` / `.half()` do);
 * a NaN stays a quiet NaN with its sign; float16 overflows to infinity above 65504 (after rounding)
 * and underflows through its subnormals to a signed zero.
 */
const word = new Uint32Array(1);
const real = new Float32Array(word.buffer);

function bitsOf(x: number): number {
  real[0] = x;
  return word[0];
}

function fromBits(bits: number): number {
  word[0] = bits;
  return real[0];
}

/** float32 bit pattern → bfloat16 bits (round to nearest even). */
function bf16OfBits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  // Adding 0x7fff plus the kept half's lowest bit rounds ties to even; a carry may reach the exponent (up to infinity), as it should.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 value → bfloat16 bits (round to nearest even). */
export function toBf16Bits(x: number): number {
  return bf16OfBits(bitsOf(x));
}

/** `src` rounded to bfloat16 into `dst` from index `at`: toBf16Bits over a run, read as raw words (no per-value conversion). */
export function toBf16BitsInto(src: Float32Array, dst: Uint16Array, at = 0): void {
  const words = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < words.length; i++) dst[at + i] = bf16OfBits(words[i]);
}

/** bfloat16 bits → float32 value (exact). */
export function fromBf16Bits(h: number): number {
  return fromBits((h & 0xffff) << 16);
}

/** `src`'s bfloat16 bits widened into `dst` (exact): fromBf16Bits over a run, written as raw words (each the bits' top half). */
export function fromBf16BitsInto(src: Uint16Array, dst: Float32Array): void {
  const words = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) words[i] = src[i] << 16;
}

/** `src`'s bfloat16 bits widened into a new float32 array (fromBf16BitsInto). */
export function fromBf16BitsArray(src: Uint16Array): Float32Array {
  const dst = new Float32Array(src.length);
  fromBf16BitsInto(src, dst);
  return dst;
}

/** float32 value → IEEE float16 bits (round to nearest even, subnormals kept). */
export function toF16Bits(x: number): number {
  const bits = bitsOf(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 112; // float32's bias 127 → float16's 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // A float16 subnormal (or zero): the implicit bit made explicit, shifted into the 10 mantissa bits.
    if (e < -10) return sign;
    return sign | roundShift(mant | 0x800000, 14 - e);
  }
  // A carry out of the mantissa rounds into the exponent (up to infinity), as it should.
  return sign | roundShift((e << 23) | mant, 13);
}

/** `value >>> shift`, rounded to nearest, ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** IEEE float16 bits → float32 value (exact). */
export function fromF16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
