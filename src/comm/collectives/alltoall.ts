/**
 * Pairwise all-to-all (MPI_Alltoallv; what expert parallelism dispatches tokens with): every rank
 * holds one block for each rank, rank-major (block p goes to rank p), and receives one block from
 * each, rank-major (block p came from rank p). Blocks may differ in size; both sides know them.
 *
 * Every receive is posted first, straight into its place in the output; then at step s (1..n-1)
 * rank r sends its block for r+s, so at each step every rank sends to a different peer (no rank is
 * flooded by all the others at once). The block a rank keeps is copied. Empty blocks send nothing.
 *
 * Bytes sent per rank: the input less its own block; n-1 messages at most, one latency.
 */
import { bytesOf } from '../transport.js';
import { later, mod, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';

/** Where each rank's block lies in a rank-major buffer, in elements. */
export function blockStarts(counts: readonly number[]): number[] {
  const starts: number[] = [];
  let at = 0;
  for (const c of counts) {
    starts.push(at);
    at += c;
  }
  return starts;
}

/** Sends input's block p to rank p and fills output's block p from rank p (counts in elements). */
export async function pairwiseAllToAll(
  ctx: OpContext, input: Float32Array, sendCounts: readonly number[], output: Float32Array, recvCounts: readonly number[],
): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const [sendAt, recvAt] = [blockStarts(sendCounts), blockStarts(recvCounts)];
  const block = (buf: Float32Array, starts: number[], counts: readonly number[], p: number): Float32Array => buf.subarray(starts[p], starts[p] + counts[p]);
  const incoming: Promise<unknown>[] = [];
  for (let s = 1; s < n; s++) {
    const from = mod(r - s, n);
    if (recvCounts[from] > 0) incoming.push(later(t.recv(from, tagOf(ctx, 0), recvOptions(ctx, bytesOf(block(output, recvAt, recvCounts, from))))));
  }
  const sends: Promise<void>[] = [];
  for (let s = 1; s < n; s++) {
    const to = mod(r + s, n);
    if (sendCounts[to] > 0) sends.push(later(t.send(to, tagOf(ctx, 0), bytesOf(block(input, sendAt, sendCounts, to)), sendOptions(ctx))));
  }
  block(output, recvAt, recvCounts, r).set(block(input, sendAt, sendCounts, r));
  await Promise.all(incoming);
  await Promise.all(sends);
}
