import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, fmtShape, sizeOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { isQuantType } from '../quant/formats.js';
import { quantizedEmbedding } from './quant.js';
import { hostIndexValues, indexCount, indexStorage, type Indices } from './indices.js';

/**
 * Looks up rows of `table` [vocab, dim]; output shape is idsShape + [dim]. `ids` is an int32 tensor
 * on the table's device (token ids as the data pipeline makes them; its shape is the default
 * idsShape) or host values. A quantized table (ops/quant.ts) gives its rows as float32 and no gradient;
 * so does a bfloat16 one (a model held in bf16 for inference), each row widened exactly.
 */
export function embedding(table: Tensor, ids: Indices, idsShape: readonly number[] = ids instanceof Int32Array ? [ids.length] : ids.shape): Tensor {
  if (table.ndim !== 2) throw new ShapeError('embedding', 'table must be [vocab, dim]', [table.shape]);
  const [vocab, dim] = table.shape;
  const count = indexCount(ids);
  if (sizeOf(idsShape) !== count) {
    throw new ShapeError('embedding', `idsShape ${fmtShape(idsShape)} does not hold ${count} ids`, [table.shape, idsShape]);
  }
  const host = hostIndexValues(ids);
  for (let i = 0; host && i < host.length; i++) {
    if (host[i] < 0 || host[i] >= vocab) throw new Error(`embedding: id ${host[i]} at position ${i} is outside [0, ${vocab})`);
  }
  const idBuf = indexStorage('embedding', ids, table.device).buffer;
  if (isQuantType(table.dtype)) return quantizedEmbedding(table, idBuf, idsShape);
  if (table.dtype === 'bfloat16') return bf16Embedding(table, host, idsShape);
  const out = Tensor.zeros([...idsShape, dim], table.dtype, table.device);
  const k = kernelsFor(table);
  k.embedding(table.buffer, idBuf, dim, out.buffer);
  return record(out, 'embedding', [table], (gy) => k.embeddingBackward(gy, idBuf, dim, table.ensureGrad()));
}

/** Rows of a bfloat16 table widened to float32 (exact), one fromBf16 per id; no gradient (a frozen table). */
function bf16Embedding(table: Tensor, ids: ArrayLike<number> | null, idsShape: readonly number[]): Tensor {
  if (ids === null) throw new Error('embedding: a bfloat16 table takes host ids');
  const dim = table.shape[1];
  const out = Tensor.zeros([...idsShape, dim], 'float32', table.device);
  const k = kernelsFor({ device: table.device, dtype: 'float32' });
  for (let i = 0; i < ids.length; i++) k.fromBf16(table.storage.view(ids[i] * dim, dim).buffer, out.storage.view(i * dim, dim).buffer);
  return out;
}
