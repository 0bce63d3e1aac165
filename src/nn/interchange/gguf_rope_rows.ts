/**
 * The row order of q and k under llama.cpp's `llama` architecture. Its converter interleaves each
 * head's rows so that rotary pairs are adjacent rows (2j, 2j + 1), where Hugging Face keeps them as
 * halves (j, half + j); reading a GGUF undoes it (gguf_llama.ts), writing one does it (gguf_export.ts).
 */

/** Which order the rows are put into. */
export type RopeRowOrder = 'halves' | 'pairs';

/**
 * Each head's rows reordered into `to` from the other order, in a new array; a row is `rowLength`
 * array elements (floats, or a quantized row's bytes, which move whole).
 */
export function reorderRopeRows<T extends Float32Array | Uint8Array>(src: T, heads: number, rowLength: number, to: RopeRowOrder): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const perHead = src.length / heads;
  for (let h = 0; h < heads; h++) reorderHead(src.subarray(h * perHead, (h + 1) * perHead), out.subarray(h * perHead, (h + 1) * perHead), rowLength, to);
  return out;
}

/**
 * As reorderRopeRows, in `rows` itself through a scratch of one head's rows: a generator's load,
 * whose q and k blocks already sit in their place in huge pages (a new array a matrix, 9 MB over
 * SmolLM2-135M's 30 layers, was garbage resident at the load's peak).
 */
export function reorderRopeRowsInPlace<T extends Float32Array | Uint8Array>(rows: T, heads: number, rowLength: number, to: RopeRowOrder): T {
  const perHead = rows.length / heads;
  const scratch = rows.slice(0, perHead) as T;
  for (let h = 0; h < heads; h++) {
    const head = rows.subarray(h * perHead, (h + 1) * perHead) as T;
    scratch.set(head);
    reorderHead(scratch, head, rowLength, to);
  }
  return rows;
}

/** One head's rows from `src` into `out` (apart), in `to`'s order. */
function reorderHead<T extends Float32Array | Uint8Array>(src: T, out: T, rowLength: number, to: RopeRowOrder): void {
  const half = src.length / rowLength / 2;
  for (let j = 0; j < half; j++) {
    for (let i = 0; i < 2; i++) {
      const paired = (2 * j + i) * rowLength;
      const halved = (i * half + j) * rowLength;
      const [from, at] = to === 'halves' ? [paired, halved] : [halved, paired];
      out.set(src.subarray(from, from + rowLength), at);
    }
  }
}
