import type { Buf } from '../../backend.js';

export function embedding(table: Buf, ids: Int32Array, dim: number, out: Buf): void {
  for (let i = 0; i < ids.length; i++) out.set(table.subarray(ids[i] * dim, (ids[i] + 1) * dim), i * dim);
}

export function embeddingBackward(gy: Buf, ids: Int32Array, dim: number, gTable: Buf): void {
  for (let i = 0; i < ids.length; i++) {
    const src = i * dim;
    const dst = ids[i] * dim;
    for (let j = 0; j < dim; j++) gTable[dst + j] += gy[src + j];
  }
}
