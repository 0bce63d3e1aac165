/**
 * The row order of q and k under llama.cpp's `llama` architecture. Its converter interleaves each
 * head's rows so that rotary pairs are adjacent rows (2j, 2j + 1), where Hugging Face keeps them as
 * halves (j, half + j); reading a GGUF undoes it (gguf_llama.ts), writing one does it (gguf_export.ts).
 */

/** Which order the rows are put into. */
export type RopeRowOrder = 'halves' | 'pairs';

/**
 * Each head's rows reordered into `to` from the other order; a row is `rowLength` array elements
 * (floats, or a quantized row's bytes, which move whole).
 */
export function reorderRopeRows<T extends Float32Array | Uint8Array>(src: T, heads: number, rowLength: number, to: RopeRowOrder): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const rowsPerHead = src.length / rowLength / heads;
  const half = rowsPerHead / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let i = 0; i < 2; i++) {
        const paired = (h * rowsPerHead + 2 * j + i) * rowLength;
        const halved = (h * rowsPerHead + i * half + j) * rowLength;
        const [from, at] = to === 'halves' ? [paired, halved] : [halved, paired];
        out.set(src.subarray(from, from + rowLength), at);
      }
    }
  }
  return out;
}
