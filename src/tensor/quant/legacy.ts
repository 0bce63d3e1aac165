/**
 * ggml's blocks of 32 weights (ggml-common.h): one float16 scale d (and a float16 minimum m for the
 * _1 kinds), then the codes.
 *
 *   Q4_0  d, 16 bytes of nibbles                 w = d·(q − 8)        18 bytes, 4.5 bits a weight
 *   Q4_1  d, m, 16 bytes of nibbles              w = d·q + m          20 bytes, 5.0
 *   Q5_0  d, 4 bytes of fifth bits, 16 nibbles   w = d·(q − 16)       22 bytes, 5.5
 *   Q5_1  d, m, 4 bytes of fifth bits, nibbles   w = d·q + m          24 bytes, 6.0
 *   Q8_0  d, 32 signed bytes                     w = d·q              34 bytes, 8.5
 *
 * The nibbles of byte j are weights j (low) and j + 16 (high); the fifth bit of weight j is bit j of
 * the little-endian 32-bit word. Dequantization rounds as gguf-py's numpy does (each product and
 * sum a float32: Math.fround), so it equals `gguf.quants.dequantize` bit for bit; quantization is
 * ggml's reference (quantize_row_*_ref), which gguf-py reproduces byte for byte.
 */
import { readF16, writeF16 } from './half.js';

const f = Math.fround;

/** ggml's roundf: to nearest, halves away from zero. */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** The value of largest magnitude in x[at, at + n) (the first such, as ggml scans). */
function signedAbsMax(x: Float32Array, at: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[at + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, at: number, n: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = x[at + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

const inverse = (d: number): number => (d !== 0 ? f(1 / d) : 0);

/** The 5-bit code of weight j of a Q5 block (nibbles at `qs`, fifth bits at `qh`). */
function code5(src: Uint8Array, qh: number, qs: number, j: number): number {
  const low = j < 16 ? src[qs + j] & 0x0f : src[qs + j - 16] >> 4;
  return low | (((src[qh + (j >> 3)] >> (j & 7)) & 1) << 4);
}

/** Packs 32 codes (0..31) as Q5 nibbles at `qs` and fifth bits at `qh`. */
function pack5(codes: Uint8Array, out: Uint8Array, qh: number, qs: number): void {
  for (let j = 0; j < 4; j++) out[qh + j] = 0;
  for (let j = 0; j < 16; j++) out[qs + j] = (codes[j] & 0x0f) | ((codes[j + 16] & 0x0f) << 4);
  for (let j = 0; j < 32; j++) out[qh + (j >> 3)] |= (codes[j] >> 4) << (j & 7);
}

const codes = new Uint8Array(32);

export const q4_0 = {
  blockWeights: 32,
  blockBytes: 18,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    const d = readF16(src, at);
    for (let j = 0; j < 16; j++) {
      const b = src[at + 2 + j];
      out[o + j] = f(d * ((b & 0x0f) - 8));
      out[o + j + 16] = f(d * ((b >> 4) - 8));
    }
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    const d = f(signedAbsMax(x, xi, 32) / -8);
    const id = inverse(d);
    writeF16(out, at, d);
    for (let j = 0; j < 32; j++) codes[j] = Math.min(15, Math.trunc(f(f(x[xi + j] * id) + 8.5)));
    for (let j = 0; j < 16; j++) out[at + 2 + j] = codes[j] | (codes[j + 16] << 4);
  },
};

export const q4_1 = {
  blockWeights: 32,
  blockBytes: 20,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    const d = readF16(src, at);
    const m = readF16(src, at + 2);
    for (let j = 0; j < 16; j++) {
      const b = src[at + 4 + j];
      out[o + j] = f(f(d * (b & 0x0f)) + m);
      out[o + j + 16] = f(f(d * (b >> 4)) + m);
    }
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    const [min, max] = minMax(x, xi, 32);
    const d = f(f(max - min) / 15);
    const id = inverse(d);
    writeF16(out, at, d);
    writeF16(out, at + 2, min);
    for (let j = 0; j < 32; j++) codes[j] = Math.min(15, Math.trunc(f(f(f(x[xi + j] - min) * id) + 0.5)));
    for (let j = 0; j < 16; j++) out[at + 4 + j] = codes[j] | (codes[j + 16] << 4);
  },
};

export const q5_0 = {
  blockWeights: 32,
  blockBytes: 22,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    const d = readF16(src, at);
    for (let j = 0; j < 32; j++) out[o + j] = f(d * (code5(src, at + 2, at + 6, j) - 16));
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    const d = f(signedAbsMax(x, xi, 32) / -16);
    const id = inverse(d);
    writeF16(out, at, d);
    for (let j = 0; j < 32; j++) codes[j] = Math.min(31, Math.trunc(f(f(x[xi + j] * id) + 16.5)));
    pack5(codes, out, at + 2, at + 6);
  },
};

export const q5_1 = {
  blockWeights: 32,
  blockBytes: 24,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    const d = readF16(src, at);
    const m = readF16(src, at + 2);
    for (let j = 0; j < 32; j++) out[o + j] = f(f(d * code5(src, at + 4, at + 8, j)) + m);
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    const [min, max] = minMax(x, xi, 32);
    const d = f(f(max - min) / 31);
    const id = inverse(d);
    writeF16(out, at, d);
    writeF16(out, at + 2, min);
    for (let j = 0; j < 32; j++) codes[j] = Math.min(31, Math.trunc(f(f(f(x[xi + j] - min) * id) + 0.5)));
    pack5(codes, out, at + 4, at + 8);
  },
};

export const q8_0 = {
  blockWeights: 32,
  blockBytes: 34,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    const d = readF16(src, at);
    for (let j = 0; j < 32; j++) out[o + j] = f(d * ((src[at + 2 + j] << 24) >> 24));
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xi + j]));
    const d = f(amax / 127);
    const id = inverse(d);
    writeF16(out, at, d);
    for (let j = 0; j < 32; j++) out[at + 2 + j] = roundHalfAway(f(x[xi + j] * id)) & 0xff;
  },
};
