/**
 * The 16-bit scales of the block formats, read and written in their hot loops: float16 through a
 * 65,536-entry table (built on first use, 256 KB: exact, as float16 → float32 always is), bfloat16
 * by a shift. Writing rounds to nearest even (util/float_formats.ts), as ggml's GGML_FP32_TO_FP16
 * and numpy's astype(float16) do.
 */
import { fromBf16Bits, fromF16Bits, toBf16Bits, toF16Bits } from '../../util/float_formats.js';

let table: Float32Array | null = null;

function f16Table(): Float32Array {
  if (table === null) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = fromF16Bits(h);
  }
  return table;
}

/** The float16 at bytes [at, at + 2) (little-endian), as a float32 value. */
export function readF16(bytes: Uint8Array, at: number): number {
  return f16Table()[bytes[at] | (bytes[at + 1] << 8)];
}

/** The bfloat16 at bytes [at, at + 2) (little-endian), as a float32 value. */
export function readBf16(bytes: Uint8Array, at: number): number {
  return fromBf16Bits(bytes[at] | (bytes[at + 1] << 8));
}

/** Writes `x` rounded to float16 at bytes [at, at + 2); returns the value stored. */
export function writeF16(bytes: Uint8Array, at: number, x: number): number {
  const h = toF16Bits(x);
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
  return f16Table()[h];
}

/** Writes `x` rounded to bfloat16 at bytes [at, at + 2); returns the value stored. */
export function writeBf16(bytes: Uint8Array, at: number, x: number): number {
  const h = toBf16Bits(x);
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
  return fromBf16Bits(h);
}
