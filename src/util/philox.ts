/**
 * Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; Random123's
 * philox4x32 with 10 rounds): a counter-based generator. Four 32-bit outputs are a pure function
 * of a 128-bit counter and a 64-bit key, so any element of a stream can be drawn on its own — by a
 * GPU thread, a cpu thread, in any order — and every backend draws the same bits. Dropout masks
 * use it (Backend.dropoutMask); the WGSL and C++ copies are in the webgpu backend and the addon.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** The high 32 bits of the 64-bit product of two unsigned 32-bit words (16-bit halves keep every partial product exact). */
export function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox-4x32-10 of counter (c0..c3) under key (k0, k1), written into `out` (four unsigned words). */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): Uint32Array {
  let x0 = c0 >>> 0, x1 = c1 >>> 0, x2 = c2 >>> 0, x3 = c3 >>> 0;
  let key0 = k0 >>> 0, key1 = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      key0 = (key0 + W0) >>> 0;
      key1 = (key1 + W1) >>> 0;
    }
    const hi0 = mulHi32(M0, x0);
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulHi32(M1, x2);
    const lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
  return out;
}

/**
 * The dropout draw of element i under key (k0, k1): word i % 4 of Philox-4x32-10 at counter
 * (floor(i / 4), 0, 0, 0). A mask drops element i when this word is below dropThreshold(p).
 */
export function dropoutWord(k0: number, k1: number, i: number, scratch = new Uint32Array(4)): number {
  return philox4x32(Math.floor(i / 4), 0, 0, 0, k0, k1, scratch)[i % 4];
}

/**
 * The integer threshold t with word < t exactly when word / 2^32 < p (t = ceil(p·2^32)), so every
 * backend decides in integers. Below 2^32 for p < 1, except within 2^-32 of 1, where it is clamped
 * to 2^32 - 1 (the one word 2^32 - 1 is then kept).
 */
export function dropThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  return Math.min(0xffffffff, Math.ceil(p * 4294967296));
}
