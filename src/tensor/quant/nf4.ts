/**
 * NF4, QLoRA's 4-bit NormalFloat (arXiv 2305.14314; bitsandbytes' `nf4`): 16 levels at the
 * quantiles of a standard normal scaled into [−1, 1], times a block's absmax. Blocks of 64, 33 bytes:
 *
 *   [c: 1 byte, the scale's code][codes: 32 bytes: byte 1 + j holds weight j in its low nibble and
 *                                 weight j + 32 in its high nibble, as ggml's Q4_0 packs]
 *
 * The scale is the block's absmax quantized to an unsigned 8-bit float (QLoRA's "double
 * quantization" of the constants, but per block, so every row decodes on its own):
 *   c = 0: scale 0;  c ≥ 1: scale = (1 + (c & 7)/8) · 2^((c >> 3) − 17)
 * from 1.125·2^-17 (c = 1) to 1.875·2^14 (c = 255), each exact in float32 and increasing with c.
 * 4.125 bits a weight. A weight is w = float32(NF4_LEVELS[q] · scale): one rounding, the same
 * float32 product the native kernels compute (quant_blocks.h), so both decode bit for bit alike.
 *
 * Quantization: absmax = max |x|; c = the smallest code whose scale ≥ absmax (0 when absmax is 0;
 * 255 past 1.875·2^14, where larger weights clip to ±scale), so no weight in range is clipped and
 * scale < 1.125·absmax (consecutive scales differ by at most 9/8); then q = the level nearest to
 * t = float32(x / scale), measured against the float32 midpoints of adjacent levels, a t on a
 * midpoint taking the lower level. Hence |x − w| ≤ scale·(h + 2^-22), h = 0.1519… the largest half
 * gap (between −1 and −0.696…), for |x| ≤ scale. A NaN or an infinity has no code here (every
 * scale code is finite, so the block cannot decode to NaN as q8_0's and mlx's blocks then do):
 * quantizing one is refused with a RangeError naming the weight, never hidden as a finite value.
 */
const f = Math.fround;

/**
 * bitsandbytes' NF4 code book (functional.py get_4bit_type('nf4'), the values create_normal_map
 * builds: norm.ppf over linspace(0.9677083, 0.5, 9) and 8, normalised by the largest), each a
 * float32 value written exactly.
 */
export const NF4_LEVELS = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** The code of level 0.0 (what a zero block holds). */
export const NF4_ZERO_CODE = 7;

/** The scale of each code c (index c): 0 for c = 0, else (1 + (c & 7)/8) · 2^((c >> 3) − 17). */
export const NF4_SCALES = Float32Array.from({ length: 256 }, (_, c) => (c === 0 ? 0 : (1 + (c & 7) / 8) * 2 ** ((c >> 3) - 17)));

/** The float32 midpoints between adjacent levels: t > NF4_MIDPOINTS[i] is past level i. */
export const NF4_MIDPOINTS = Float32Array.from({ length: 15 }, (_, i) => f((NF4_LEVELS[i] + NF4_LEVELS[i + 1]) / 2));

export const NF4_BLOCK = 64;

/** The smallest scale code whose scale is at least `absmax` (0 for 0; 255 past the largest scale). */
export function nf4ScaleCode(absmax: number): number {
  if (absmax === 0) return 0;
  let lo = 1;
  let hi = 255;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (NF4_SCALES[m] >= absmax) hi = m;
    else lo = m + 1;
  }
  return lo;
}

/** The code of the level nearest to t (t on a midpoint: the lower level). */
export function nf4Code(t: number): number {
  let lo = 0;
  let hi = 15;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (t > NF4_MIDPOINTS[m]) lo = m + 1;
    else hi = m;
  }
  return lo;
}

export const nf4 = {
  blockWeights: NF4_BLOCK,
  blockBytes: 33,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    const s = NF4_SCALES[src[at]];
    for (let j = 0; j < 32; j++) {
      const b = src[at + 1 + j];
      out[o + j] = f(NF4_LEVELS[b & 0x0f] * s);
      out[o + j + 32] = f(NF4_LEVELS[b >> 4] * s);
    }
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    let amax = 0;
    for (let i = 0; i < NF4_BLOCK; i++) {
      const v = x[xi + i];
      if (!Number.isFinite(v)) {
        throw new RangeError(`nf4: value ${xi + i} is ${v}, which nf4 cannot hold (its scales are finite): a NaN or an infinity is not quantized`);
      }
      amax = Math.max(amax, Math.abs(v));
    }
    const c = nf4ScaleCode(amax);
    out[at] = c;
    if (c === 0) {
      out.fill(NF4_ZERO_CODE | (NF4_ZERO_CODE << 4), at + 1, at + 33);
      return;
    }
    const s = NF4_SCALES[c];
    for (let j = 0; j < 32; j++) {
      out[at + 1 + j] = nf4Code(f(x[xi + j] / s)) | (nf4Code(f(x[xi + j + 32] / s)) << 4);
    }
  },
};
