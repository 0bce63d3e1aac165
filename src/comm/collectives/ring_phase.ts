/**
 * One phase of a ring algorithm on one lane (ring_plan.ts): which piece of the buffer a segment
 * number means, and which tag each step's message carries. The reduce-scatter and all-gather phases
 * (reduce_scatter.ts, allgather.ts) are written against this, so the ring all-reduce is their
 * composition over one buffer and the first-class collectives are each one phase over their own.
 */
import { mod, tagOf, type OpContext } from './context.js';
import { pieceRange, type RingPlan } from './ring_plan.js';

export interface RingPhase<T extends Float32Array | Uint8Array> {
  /** This lane's piece of segment `seg` (any integer, taken mod n, then shifted by the phase's rotation). */
  piece(seg: number): T;
  /** The tag of the phase's message at step `step` (0..n-2). */
  tag(step: number): number;
  /** The phase's sends; whoever runs the whole operation awaits them at its end. */
  readonly sends: Promise<void>[];
}

export interface PhaseLayout {
  plan: RingPlan;
  lane: number;
  /** The phase's first message index, in steps: the all-reduce's all-gather comes after n-1 reduce-scatter steps. */
  firstStep: number;
  /** Segment seg of the phase is the plan's segment seg + rotate. */
  rotate: number;
  sends: Promise<void>[];
}

export function ringPhase<T extends Float32Array | Uint8Array>(ctx: OpContext, data: T, layout: PhaseLayout): RingPhase<T> {
  const { plan, lane, firstStep, rotate, sends } = layout;
  const n = ctx.size;
  return {
    piece: (seg) => {
      const [a, b] = pieceRange(plan, mod(seg + rotate, n), lane);
      return data.subarray(a, b) as T;
    },
    tag: (step) => tagOf(ctx, (firstStep + step) * plan.lanes + lane),
    sends,
  };
}
