/**
 * ggml's K-quants (ggml-common.h): super-blocks of 256 weights.
 *
 *   Q4_K  d, dmin (float16), 12 bytes of eight 6-bit scales and mins, 128 bytes of nibbles
 *         weight of group g (32 each): d·sc[g]·q − dmin·m[g]                     144 bytes, 4.5 bits
 *   Q5_K  as Q4_K, with 32 bytes of fifth bits before the nibbles                176 bytes, 5.5
 *   Q6_K  128 bytes of low nibbles, 64 of high 2-bit pairs, 16 signed 8-bit scales (one per 16
 *         weights), d last: d·sc[g]·(q − 32)                                    210 bytes, 6.5625
 *
 * Nibbles: bytes [32c, 32c + 32) hold groups 2c (low) and 2c + 1 (high). Q5_K's fifth bit of weight
 * j of group g is bit g of byte j. Q6_K: in each half h of 128 weights, ql[64h + i] holds weights i
 * (low) and i + 64 (high) and ql[64h + 32 + i] weights i + 32 and i + 96; qh[32h + i] holds the top
 * two bits of weights i, i + 32, i + 64, i + 96 (bits 0-1, 2-3, 4-5, 6-7).
 * Dequantization rounds as gguf-py's numpy does; quantization is ggml's reference (k_fit.ts).
 */
import { readF16, writeF16 } from './half.js';
import { type AffineFit, fitAffine, fitSymmetric, nearestInt } from './k_fit.js';

const f = Math.fround;

/** The 6-bit scale and min of group j (0..7) packed in the 12 bytes at `s`. */
export function scaleMin(src: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [src[s + j] & 63, src[s + j + 4] & 63];
  return [(src[s + j + 4] & 0x0f) | ((src[s + j - 4] >> 6) << 4), (src[s + j + 4] >> 4) | ((src[s + j] >> 6) << 4)];
}

/** Packs eight 6-bit scales and mins into the 12 bytes at `s` (scaleMin's inverse: every 12 bytes unpack and pack back to themselves). */
export function packScaleMin(ls: Uint8Array, lm: Uint8Array, out: Uint8Array, s: number): void {
  for (let j = 0; j < 4; j++) {
    out[s + j] = ls[j] | ((ls[j + 4] >> 4) << 6);
    out[s + j + 4] = lm[j] | ((lm[j + 4] >> 4) << 6);
    out[s + j + 8] = (ls[j + 4] & 0x0f) | ((lm[j + 4] & 0x0f) << 4);
  }
}

/** Q4_K and Q5_K: each group's float32 d·sc and dmin·m, then every weight from its code. */
function dequantizeAffineK(src: Uint8Array, at: number, out: Float32Array, o: number, code: (j: number, g: number) => number): void {
  const d = readF16(src, at);
  const dmin = readF16(src, at + 2);
  for (let g = 0; g < 8; g++) {
    const [sc, m] = scaleMin(src, at + 4, g);
    const dl = f(d * sc);
    const ml = f(dmin * m);
    for (let j = 0; j < 32; j++) out[o + 32 * g + j] = f(f(dl * code(j, g)) - ml);
  }
}

const L = new Uint8Array(256);
const weights = new Float32Array(32);
const ls = new Uint8Array(8);
const lm = new Uint8Array(8);

/**
 * Q4_K's and Q5_K's shared quantization: a fit per group of 32 (weights av(|x|) + |x|), the eight
 * scales and mins to 6 bits against the block's largest, then every code again against the stored
 * (rounded) scales. Leaves the codes in L; writes d, dmin and the scales.
 */
function quantizeAffineK(x: Float32Array, xi: number, out: Uint8Array, at: number, nmax: number, rmin: number, nstep: number): void {
  const fits: AffineFit[] = [];
  let maxScale = 0;
  let maxMin = 0;
  for (let g = 0; g < 8; g++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[xi + 32 * g + l] * x[xi + 32 * g + l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xi + 32 * g + l]));
    const fit = fitAffine(x, xi + 32 * g, 32, nmax, weights, L, 32 * g, rmin, 0.1, nstep);
    fits.push(fit);
    if (fit.scale > maxScale) maxScale = fit.scale;
    if (fit.min > maxMin) maxMin = fit.min;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  for (let g = 0; g < 8; g++) {
    ls[g] = Math.min(63, nearestInt(f(invScale * fits[g].scale)));
    lm[g] = Math.min(63, nearestInt(f(invMin * fits[g].min)));
  }
  packScaleMin(ls, lm, out, at + 4);
  const d = writeF16(out, at, f(maxScale / 63));
  const dmin = writeF16(out, at + 2, f(maxMin / 63));
  for (let g = 0; g < 8; g++) {
    const dl = f(d * ls[g]);
    if (dl === 0) continue;
    const dm = f(dmin * lm[g]);
    for (let l = 0; l < 32; l++) L[32 * g + l] = Math.max(0, Math.min(nmax, nearestInt(f(f(x[xi + 32 * g + l] + dm) / dl))));
  }
}

/** The low nibbles of codes L, two groups to each 32 bytes at `qs` (Q4_K, Q5_K). */
function packNibbles(out: Uint8Array, qs: number): void {
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) out[qs + 32 * c + l] = (L[64 * c + l] & 0x0f) | ((L[64 * c + 32 + l] & 0x0f) << 4);
  }
}

export const q4_k = {
  blockWeights: 256,
  blockBytes: 144,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    dequantizeAffineK(src, at, out, o, (j, g) => (src[at + 16 + 32 * (g >> 1) + j] >> (4 * (g & 1))) & 0x0f);
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    quantizeAffineK(x, xi, out, at, 15, -1, 20);
    packNibbles(out, at + 16);
  },
};

export const q5_k = {
  blockWeights: 256,
  blockBytes: 176,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    dequantizeAffineK(src, at, out, o, (j, g) =>
      ((src[at + 48 + 32 * (g >> 1) + j] >> (4 * (g & 1))) & 0x0f) | (((src[at + 16 + j] >> g) & 1) << 4));
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    quantizeAffineK(x, xi, out, at, 31, -0.5, 15);
    for (let j = 0; j < 32; j++) {
      let bits = 0;
      for (let g = 0; g < 8; g++) bits |= (L[32 * g + j] >> 4) << g;
      out[at + 16 + j] = bits;
    }
    packNibbles(out, at + 48);
  },
};

/** Q6_K's six-bit code (0..63) of weight e of the super-block at `at`: ql's nibble and qh's two bits. */
export function q6Code(src: Uint8Array, at: number, e: number): number {
  const h = e >> 7;
  const i = e & 127;
  const low = (src[at + 64 * h + (i & 63)] >> (4 * (i >> 6))) & 0x0f;
  const high = (src[at + 128 + 32 * h + (i & 31)] >> (2 * (i >> 5))) & 3;
  return low | (high << 4);
}

/** A super-block's 256 six-bit codes (weight order) into its ql and qh at `at`: ggml's packing. */
export function packQ6Codes(codes: Uint8Array, out: Uint8Array, at: number): void {
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const [a, b, c, e] = [codes[128 * h + l], codes[128 * h + l + 32], codes[128 * h + l + 64], codes[128 * h + l + 96]];
      out[at + 64 * h + l] = (a & 0x0f) | ((c & 0x0f) << 4);
      out[at + 64 * h + 32 + l] = (b & 0x0f) | ((e & 0x0f) << 4);
      out[at + 128 + 32 * h + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}

export const q6_k = {
  blockWeights: 256,
  blockBytes: 210,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    const d = readF16(src, at + 208);
    for (let e = 0; e < 256; e++) {
      const sc = (src[at + 192 + (e >> 4)] << 24) >> 24;
      out[o + e] = f(f(d * sc) * (q6Code(src, at, e) - 32));
    }
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    const scales = new Float32Array(16);
    let maxScale = 0;
    let maxAbs = 0;
    for (let g = 0; g < 16; g++) {
      scales[g] = fitSymmetric(x, xi + 16 * g, 16, 32, L, 16 * g);
      if (Math.abs(scales[g]) > maxAbs) {
        maxAbs = Math.abs(scales[g]);
        maxScale = scales[g];
      }
    }
    if (maxAbs < 1e-15) {
      out.fill(0, at, at + 210);
      return;
    }
    const iscale = f(-128 / maxScale);
    const d = writeF16(out, at + 208, f(1 / iscale));
    for (let g = 0; g < 16; g++) {
      const sc = Math.min(127, nearestInt(f(iscale * scales[g])));
      out[at + 192 + g] = sc & 0xff;
      const dl = f(d * ((sc << 24) >> 24));
      if (dl === 0) continue;
      for (let l = 0; l < 16; l++) L[16 * g + l] = Math.max(-32, Math.min(31, nearestInt(f(x[xi + 16 * g + l] / dl)))) + 32;
    }
    packQ6Codes(L, out, at);
  },
};
