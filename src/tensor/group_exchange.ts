/**
 * Rows exchanged between the ranks of a group as an autograd op (expert parallelism's dispatch and
 * combine): the exchange itself is an all-to-all behind the `GroupExchanger` interface, implemented
 * above (parallel/ over comm's ProcessGroup), so tensor/ knows nothing of comm. The backward is the
 * same exchange in reverse: each row's gradient goes back to the rank the row came from.
 */
import { record } from './autograd.js';
import { kernelsFor } from './dispatch.js';
import { Tensor } from './tensor.js';

/** An all-to-all over a group: block p of `values` to rank p, block p of the result from rank p (counts in elements). */
export interface GroupExchanger {
  readonly size: number;
  readonly rank: number;
  exchange(values: Float32Array, sendCounts: readonly number[], recvCounts: readonly number[]): Promise<Float32Array>;
}

/**
 * Rows of x [rows, width], rank-major (`sendRows[p]` of them to rank p), sent; the rows received,
 * rank-major (`recvRows[p]` from rank p), returned [Σ recvRows, width]. Host (cpu) tensors.
 */
export async function exchangeRows(x: Tensor, sendRows: readonly number[], recvRows: readonly number[], group: GroupExchanger): Promise<Tensor> {
  const width = x.shape[x.ndim - 1];
  const values = Float32Array.from(await x.read() as ArrayLike<number>);
  const got = await group.exchange(values, sendRows.map((r) => r * width), recvRows.map((r) => r * width));
  const out = Tensor.from(got, [got.length / width, width]);
  return record(out, 'exchange_rows', [x], async () => {
    const g = Float32Array.from(await out.grad!.read() as ArrayLike<number>);
    const back = await group.exchange(g, recvRows.map((r) => r * width), sendRows.map((r) => r * width));
    kernelsFor(x).axpy(1, Tensor.from(back, x.shape).buffer, x.ensureGrad());
  });
}
