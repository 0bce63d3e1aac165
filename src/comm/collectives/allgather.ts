/**
 * Ring all-gather: every rank contributes one block (equal sizes, or explicit counts); the output is
 * rank-major, block i from rank i. Works on bytes, so any typed data travels.
 *
 * Rank r sends to r+1 and receives from r-1. Step s (0..n-2): send block r-s to the right, receive
 * block r-s-1 from the left straight into the output, then forward it. Blocks are cut into lanes that
 * run concurrently (ring_plan.ts), pipelining the ring; the ring all-reduce's second phase is this one.
 *
 * Bytes sent per rank: (n-1)/n of the output (every block but one's own); n-1 messages per lane.
 */
import { bytesOf } from '../transport.js';
import { later, mod, recvOptions, sendOptions, type OpContext } from './context.js';
import { ringPhase, type RingPhase } from './ring_phase.js';
import type { RingPlan } from './ring_plan.js';

/**
 * Posts every receive of the phase now (so payloads land in place in the buffer), and returns the
 * steps to run: they start by sending this rank's block, phase segment r.
 */
export function postAllGather(ctx: OpContext, phase: RingPhase<Float32Array | Uint8Array>): () => Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const right = mod(r + 1, n);
  const left = mod(r - 1, n);
  const steps = n - 1;
  const incoming: Promise<Uint8Array>[] = [];
  for (let s = 0; s < steps; s++) incoming.push(later(t.recv(left, phase.tag(s), recvOptions(ctx, bytesOf(phase.piece(r - s - 1))))));
  const send = (step: number, block: number): void => {
    phase.sends.push(later(t.send(right, phase.tag(step), bytesOf(phase.piece(block)), sendOptions(ctx))));
  };
  return async () => {
    send(0, r);
    for (let s = 0; s < steps; s++) {
      await incoming[s];
      if (s + 1 < steps) send(s + 1, r - s - 1);
    }
  };
}

/** Fills `output` (segments: `plan`, in bytes) with every rank's block; this rank's must already be in place. */
export async function ringAllGather(ctx: OpContext, output: Uint8Array, plan: RingPlan): Promise<void> {
  const sends: Promise<void>[] = [];
  const runs: Promise<void>[] = [];
  for (let lane = 0; lane < plan.lanes; lane++) runs.push(postAllGather(ctx, ringPhase(ctx, output, { plan, lane, firstStep: 0, rotate: 0, sends }))());
  await Promise.all(runs);
  await Promise.all(sends);
}
