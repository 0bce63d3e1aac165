/**
 * Direct all-reduce for small buffers: every rank sends its whole buffer to every other rank and
 * sums all n buffers itself, in rank order 0..n-1. One message latency instead of the ring's
 * 2 (n-1), at (n-1) * size bytes sent per rank — the right trade below a few tens of kilobytes.
 *
 * Determinism: every rank adds the same n inputs in the same order, so all get identical bits.
 */
import { bytesOf } from '../transport.js';
import { later, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';
import { divideInPlace, reduceInto, type ReduceOp } from './reduce_ops.js';

export async function directAllReduce(ctx: OpContext, data: Float32Array, op: ReduceOp): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const len = data.length;
  const scratch = ctx.scratch.acquire(len * n);
  const inputs: Promise<Uint8Array>[] = [];
  for (let p = 0; p < n; p++) {
    if (p === r) continue;
    const slot = scratch.subarray(p * len, (p + 1) * len);
    inputs.push(later(t.recv(p, tagOf(ctx, 0), recvOptions(ctx, bytesOf(slot)))));
  }
  const sends: Promise<void>[] = [];
  for (let p = 0; p < n; p++) if (p !== r) sends.push(later(t.send(p, tagOf(ctx, 0), bytesOf(data), sendOptions(ctx))));
  await Promise.all(inputs);
  await Promise.all(sends); // data is ours to overwrite only once it has left
  // Our own contribution goes in its rank slot so the order of additions is the same everywhere.
  scratch.set(data, r * len);
  const acc = scratch.subarray(0, len);
  for (let p = 1; p < n; p++) reduceInto(acc, scratch.subarray(p * len, (p + 1) * len), op, ctx.add);
  if (op === 'avg') divideInPlace(acc, n);
  data.set(acc);
  ctx.scratch.release(scratch);
}
