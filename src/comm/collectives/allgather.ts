/**
 * Ring all-gather: every rank contributes an equal-sized block; block i ends at output[i*len ...].
 * Step s (0..n-2): send block r-s to the right, receive block r-s-1 from the left straight into
 * the output, then forward it. Blocks are cut into lanes that run concurrently (pipelining), like
 * the all-gather half of the ring all-reduce. Bytes sent per rank: (n-1) * len.
 */
import { MAX_LANES } from './ring_plan.js';
import { later, mod, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';

export async function ringAllGather(ctx: OpContext, input: Uint8Array, output: Uint8Array, chunkBytes: number): Promise<void> {
  const { rank: r, size: n } = ctx;
  const len = input.length;
  output.set(input, r * len);
  const lanes = Math.max(1, Math.min(MAX_LANES, Math.floor(len / Math.max(1, chunkBytes))));
  const jobs: Promise<void>[] = [];
  for (let c = 0; c < lanes; c++) {
    const a = Math.floor((c * len) / lanes);
    const b = Math.floor(((c + 1) * len) / lanes);
    const view = (block: number): Uint8Array => output.subarray(mod(block, n) * len + a, mod(block, n) * len + b);
    jobs.push(gatherLane(ctx, view, c, lanes));
  }
  await Promise.all(jobs);
}

async function gatherLane(ctx: OpContext, view: (block: number) => Uint8Array, lane: number, lanes: number): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const right = mod(r + 1, n);
  const left = mod(r - 1, n);
  const tag = (step: number): number => tagOf(ctx, step * lanes + lane);
  const incoming: Promise<Uint8Array>[] = [];
  for (let s = 0; s < n - 1; s++) incoming.push(later(t.recv(left, tag(s), recvOptions(ctx, view(r - s - 1)))));
  const sends: Promise<void>[] = [later(t.send(right, tag(0), view(r), sendOptions(ctx)))];
  for (let s = 0; s < n - 1; s++) {
    await incoming[s];
    if (s + 1 < n - 1) sends.push(later(t.send(right, tag(s + 1), view(r - s - 1), sendOptions(ctx))));
  }
  await Promise.all(sends);
}
