/**
 * Ring all-reduce: the ring reduce-scatter (reduce_scatter.ts), then the ring all-gather
 * (allgather.ts), over one buffer in place, chunked into lanes that run concurrently.
 *
 * Rank r sends to r+1 and receives from r-1. After the reduce-scatter's n-1 steps rank r holds the
 * final segment r+1; for 'avg' it divides that segment, then the all-gather passes final segments
 * round the ring (rotated by one, so that its "own block" is segment r+1), each received straight
 * into the caller's buffer. Every receive of both phases is posted before anything is sent.
 *
 * Determinism: segment j is summed along one fixed path (x_j, then + x_{j+1}, ...) and then copied,
 * byte for byte, to every rank, so all ranks end with identical bits.
 *
 * Bytes sent per rank: 2 (n-1)/n * size; 2 (n-1) messages per lane.
 */
import type { OpContext } from './context.js';
import { postAllGather } from './allgather.js';
import { divideInPlace, type ReduceOp } from './reduce_ops.js';
import { postReduceScatter } from './reduce_scatter.js';
import { ringPhase } from './ring_phase.js';
import { planRing } from './ring_plan.js';

export async function ringAllReduce(ctx: OpContext, data: Float32Array, op: ReduceOp, chunkBytes: number): Promise<void> {
  const { rank: r, size: n } = ctx;
  const plan = planRing(data.length, n, chunkBytes >>> 2);
  // One receive slot per reduce-scatter step, all posted before anything is sent, so every message
  // lands in place: with fewer slots a neighbour running ahead made its message land in a freshly
  // allocated buffer, every step. Costs (n-1)/n of the buffer in pooled scratch, reused across steps.
  const slots = n - 1;
  const laneScratch = plan.maxPiece * slots;
  const scratch = ctx.scratch.acquire(laneScratch * plan.lanes);
  const sends: Promise<void>[] = [];
  const lanes: Promise<void>[] = [];
  for (let lane = 0; lane < plan.lanes; lane++) {
    const reduce = ringPhase(ctx, data, { plan, lane, firstStep: 0, rotate: 0, sends });
    const gather = ringPhase(ctx, data, { plan, lane, firstStep: n - 1, rotate: 1, sends });
    const reduceScatter = postReduceScatter(ctx, reduce, op, scratch.subarray(lane * laneScratch, (lane + 1) * laneScratch), plan.maxPiece);
    const allGather = postAllGather(ctx, gather);
    lanes.push(
      (async () => {
        await reduceScatter();
        if (op === 'avg') divideInPlace(reduce.piece(r + 1), n);
        await allGather();
      })(),
    );
  }
  await Promise.all(lanes);
  await Promise.all(sends);
  ctx.scratch.release(scratch);
}
