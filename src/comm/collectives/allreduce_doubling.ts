/**
 * Recursive-doubling all-reduce for small buffers at more than two ranks: with p the largest power of
 * two <= n, round k (0 .. log2 p - 1) exchanges the whole partial sum with partner r XOR 2^k and adds.
 * log2(p) message latencies instead of the ring's 2 (n-1), and log2(p) * size bytes sent per rank
 * instead of the direct all-reduce's (n-1) * size. Ranks p .. n-1 (when n is not a power of two) first
 * hand their buffer to rank r - p, which folds it in, and get the result back at the end.
 *
 * Determinism: in every round both partners add the same two operands (float addition and max are
 * commutative), so all ranks end with identical bits. The order of additions is a fixed tree
 * ((x0+x1)+(x2+x3) at n = 4), not the ring's or the direct all-reduce's, so the three may differ in
 * the last bits from each other.
 */
import { bytesOf } from '../transport.js';
import { later, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';
import { divideInPlace, reduceInto, type ReduceOp } from './reduce_ops.js';

/** Largest power of two <= n. */
export function corePower(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

export async function doublingAllReduce(ctx: OpContext, data: Float32Array, op: ReduceOp): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const len = data.length;
  const p = corePower(n);
  const rounds = Math.log2(p);
  const foldTag = tagOf(ctx, 0);
  const resultTag = tagOf(ctx, rounds + 1);
  if (r >= p) {
    // An extra rank: its buffer is folded into rank r - p, which sends back the result.
    const result = later(t.recv(r - p, resultTag, recvOptions(ctx, bytesOf(data))));
    await t.send(r - p, foldTag, bytesOf(data), sendOptions(ctx));
    await result;
    return;
  }
  // One receive slot per round (plus one for a folded extra), all posted first so messages land in place.
  const hasExtra = r + p < n;
  const scratch = ctx.scratch.acquire(len * (rounds + 1));
  const slot = (i: number): Float32Array => scratch.subarray(i * len, (i + 1) * len);
  const folded = hasExtra ? later(t.recv(r + p, foldTag, recvOptions(ctx, bytesOf(slot(0))))) : null;
  const incoming: Promise<Uint8Array>[] = [];
  for (let k = 0; k < rounds; k++) incoming.push(later(t.recv(r ^ (1 << k), tagOf(ctx, k + 1), recvOptions(ctx, bytesOf(slot(k + 1))))));
  // `cur` is never written while a send of it may be in flight: each round's sum goes to a new slot.
  let cur: Float32Array = data;
  if (folded) {
    await folded;
    reduceInto(slot(0), data, op, ctx.add);
    cur = slot(0);
  }
  for (let k = 0; k < rounds; k++) {
    const sent = later(t.send(r ^ (1 << k), tagOf(ctx, k + 1), bytesOf(cur), sendOptions(ctx)));
    await incoming[k];
    await sent;
    reduceInto(slot(k + 1), cur, op, ctx.add);
    cur = slot(k + 1);
  }
  if (op === 'avg') divideInPlace(cur, n);
  data.set(cur);
  if (hasExtra) await t.send(r + p, resultTag, bytesOf(data), sendOptions(ctx));
  ctx.scratch.release(scratch);
}
