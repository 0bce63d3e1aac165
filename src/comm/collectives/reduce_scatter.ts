/**
 * Ring reduce-scatter: every rank gives a buffer cut into n segments (equal, or explicit counts),
 * and rank r ends with segment r reduced over all ranks (sum, avg or max).
 *
 * Rank r sends to r+1 and receives from r-1. In phase numbering, step s (0..n-2): send segment r-s,
 * receive segment r-s-1 and reduce our own copy with it; after n-1 steps rank r holds the final
 * segment r+1 (the first-class collective rotates the numbering by one so that this is segment r).
 * Segments are cut into lanes that run concurrently (ring_plan.ts), pipelining the ring.
 *
 * Determinism: segment j is summed along one fixed path, so the result does not depend on timing.
 *
 * Bytes sent per rank: (n-1)/n of the buffer; n-1 messages per lane.
 */
import { bytesOf, floatsOf } from '../transport.js';
import { later, mod, recvOptions, sendOptions, type OpContext } from './context.js';
import { divideInPlace, reduceInto, type ReduceOp } from './reduce_ops.js';
import { ringPhase, type RingPhase } from './ring_phase.js';
import { pieceRange, type RingPlan } from './ring_plan.js';

/**
 * Posts every receive of the phase now (so payloads land in place), and returns the steps to run.
 * Without `into`, partial sums accumulate in the phase's own buffer (the all-reduce, in place); with
 * it, the buffer is only read: partial sums accumulate in `scratch` slots and the final segment
 * lands in `into`. `scratch` holds n-1 slots of `slotFloats`.
 */
export function postReduceScatter(ctx: OpContext, phase: RingPhase<Float32Array>, op: ReduceOp, scratch: Float32Array, slotFloats: number, into?: Float32Array): () => Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const right = mod(r + 1, n);
  const left = mod(r - 1, n);
  const steps = n - 1;
  // Where the transport can (shared memory), an in-place phase sums incoming pieces straight out of its buffer.
  const consumes = into === undefined && (t.consumesPiecesFrom?.(left) ?? false);
  const landing = (s: number, length: number): Float32Array => (into && s === steps - 1 ? into : scratch.subarray(s * slotFloats, s * slotFloats + length));
  const incoming: Promise<Uint8Array>[] = [];
  for (let s = 0; s < steps; s++) {
    const mine = phase.piece(r - s - 1);
    if (consumes) {
      const piece = (bytes: Uint8Array, offset: number): void => reduceInto(mine.subarray(offset >> 2, (offset + bytes.length) >> 2), floatsOf(bytes), op, ctx.add);
      incoming.push(later(t.recv(left, phase.tag(s), { ...recvOptions(ctx), consume: { bytes: mine.byteLength, piece } })));
    } else {
      incoming.push(later(t.recv(left, phase.tag(s), recvOptions(ctx, bytesOf(landing(s, mine.length))))));
    }
  }
  const send = (step: number, v: Float32Array): void => {
    phase.sends.push(later(t.send(right, phase.tag(step), bytesOf(v), sendOptions(ctx))));
  };
  return async () => {
    send(0, phase.piece(r));
    for (let s = 0; s < steps; s++) {
      const arrived = floatsOf(await incoming[s]);
      const mine = phase.piece(r - s - 1);
      let sum = mine;
      if (into) {
        // Out of place: the partial sum is the landed message plus our piece (a + b == b + a in IEEE).
        sum = landing(s, mine.length);
        reduceInto(sum, mine, op, ctx.add);
      } else if (!consumes) reduceInto(mine, arrived, op, ctx.add);
      if (s + 1 < steps) send(s + 1, sum);
    }
  };
}

/**
 * Rank r's reduced segment r of `input` (segments: `plan`) into `output`. `input` is left as it was,
 * unless `overwriteInput`: then partial sums accumulate in it, as the all-reduce's do, so no scratch
 * holds them (on shared memory, incoming pieces are summed straight out of the ring: no scratch at
 * all). Either way each segment is summed along the same path, so the result has the same bits.
 */
export async function ringReduceScatter(ctx: OpContext, input: Float32Array, output: Float32Array, plan: RingPlan, op: ReduceOp, overwriteInput = false): Promise<void> {
  const { rank: r, size: n } = ctx;
  const slots = n - 1;
  const consumes = overwriteInput && (ctx.transport.consumesPiecesFrom?.(mod(r - 1, n)) ?? false);
  const laneScratch = consumes ? 0 : plan.maxPiece * slots;
  const scratch = consumes ? new Float32Array(0) : ctx.scratch.acquire(laneScratch * plan.lanes);
  const sends: Promise<void>[] = [];
  const runs: Promise<void>[] = [];
  const mineStart = plan.segStart[r];
  for (let lane = 0; lane < plan.lanes; lane++) {
    // Rotated by one: the phase leaves segment r+1 of its numbering with rank r, which is the plan's segment r.
    const phase = ringPhase(ctx, input, { plan, lane, firstStep: 0, rotate: -1, sends });
    const [a, b] = pieceRange(plan, r, lane);
    const into = output.subarray(a - mineStart, b - mineStart);
    const laneSlots = scratch.subarray(lane * laneScratch, (lane + 1) * laneScratch);
    if (!overwriteInput) runs.push(postReduceScatter(ctx, phase, op, laneSlots, plan.maxPiece, into)());
    else runs.push(postReduceScatter(ctx, phase, op, laneSlots, plan.maxPiece)().then(() => into.set(input.subarray(a, b))));
  }
  await Promise.all(runs);
  await Promise.all(sends);
  if (!consumes) ctx.scratch.release(scratch);
  if (op === 'avg') divideInPlace(output, n);
}
