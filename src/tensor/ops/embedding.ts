import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, fmtShape, sizeOf } from '../shape.js';
import { Tensor } from '../tensor.js';

/** Looks up rows of `table` [vocab, dim]; output shape is idsShape + [dim]. */
export function embedding(table: Tensor, ids: Int32Array, idsShape: readonly number[] = [ids.length]): Tensor {
  if (table.ndim !== 2) throw new ShapeError('embedding', 'table must be [vocab, dim]', [table.shape]);
  const [vocab, dim] = table.shape;
  if (sizeOf(idsShape) !== ids.length) {
    throw new ShapeError('embedding', `idsShape ${fmtShape(idsShape)} does not hold ${ids.length} ids`, [table.shape, idsShape]);
  }
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= vocab) throw new Error(`embedding: id ${ids[i]} at position ${i} is outside [0, ${vocab})`);
  }
  const out = Tensor.zeros([...idsShape, dim], table.dtype, table.device);
  const k = kernelsFor(table);
  k.embedding(table.buffer, ids, dim, out.buffer);
  return record(out, 'embedding', [table], (gy) => k.embeddingBackward(gy, ids, dim, table.ensureGrad()));
}
