/**
 * Ring all-reduce (reduce-scatter, then all-gather), chunked into lanes that run concurrently.
 *
 * Rank r sends to r+1 and receives from r-1. Reduce-scatter step s (0..n-2): send segment r-s,
 * receive segment r-s-1 and reduce it into our copy. After n-1 steps rank r holds the final
 * segment r+1; for 'avg' it divides that segment, then the all-gather passes final segments round
 * the ring, each received straight into the caller's buffer.
 *
 * Determinism: segment j is summed along one fixed path (x_j, then + x_{j+1}, ...) and then copied,
 * byte for byte, to every rank, so all ranks end with identical bits.
 *
 * Bytes sent per rank: 2 (n-1)/n * size; 2 (n-1) messages per lane.
 */
import { bytesOf, floatsOf } from '../transport.js';
import { later, mod, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';
import { divideInPlace, reduceInto, type ReduceOp } from './reduce_ops.js';
import { pieceRange, planRing, type RingPlan } from './ring_plan.js';

export async function ringAllReduce(ctx: OpContext, data: Float32Array, op: ReduceOp, chunkBytes: number): Promise<void> {
  const n = ctx.size;
  const plan = planRing(data.length, n, chunkBytes >>> 2);
  // One receive slot per reduce-scatter step, all posted before anything is sent, so every message
  // lands in place: with fewer slots a neighbour running ahead made its message land in a freshly
  // allocated buffer, every step. Costs (n-1)/n of the buffer in pooled scratch, reused across steps.
  const slots = n - 1;
  const laneScratch = plan.maxPiece * slots;
  const scratch = ctx.scratch.acquire(laneScratch * plan.lanes);
  const lanes: Promise<void>[] = [];
  for (let c = 0; c < plan.lanes; c++) {
    lanes.push(runLane(ctx, data, op, plan, c, scratch.subarray(c * laneScratch, (c + 1) * laneScratch), slots));
  }
  await Promise.all(lanes);
  ctx.scratch.release(scratch);
}

async function runLane(
  ctx: OpContext,
  data: Float32Array,
  op: ReduceOp,
  plan: RingPlan,
  lane: number,
  scratch: Float32Array,
  slots: number,
): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const right = mod(r + 1, n);
  const left = mod(r - 1, n);
  const steps = n - 1;
  const view = (seg: number): Float32Array => {
    const [a, b] = pieceRange(plan, mod(seg, n), lane);
    return data.subarray(a, b);
  };
  const tag = (phase: number, step: number): number => tagOf(ctx, (phase * steps + step) * plan.lanes + lane);
  const sends: Promise<void>[] = [];
  const send = (phase: number, step: number, v: Float32Array): void => {
    sends.push(later(t.send(right, tag(phase, step), bytesOf(v), sendOptions(ctx))));
  };

  // Post every receive we can before sending anything, so payloads land in place. Where the transport
  // can (shared memory), incoming pieces are summed straight out of its buffer instead: reduced[s].
  const consumes = t.consumesPiecesFrom?.(left) ?? false;
  const reduceRecv: Promise<Uint8Array>[] = [];
  const postReduce = (s: number): void => {
    const mine = view(r - s - 1);
    if (consumes) {
      const piece = (bytes: Uint8Array, offset: number): void => reduceInto(mine.subarray(offset >> 2, (offset + bytes.length) >> 2), floatsOf(bytes), op, ctx.add);
      reduceRecv[s] = later(t.recv(left, tag(0, s), { ...recvOptions(ctx), consume: { bytes: mine.byteLength, piece } }));
      return;
    }
    const slot = scratch.subarray((s % slots) * plan.maxPiece, (s % slots) * plan.maxPiece + mine.length);
    reduceRecv[s] = later(t.recv(left, tag(0, s), recvOptions(ctx, bytesOf(slot))));
  };
  for (let s = 0; s < slots; s++) postReduce(s);
  const gatherRecv: Promise<Uint8Array>[] = [];
  for (let s = 0; s < steps; s++) gatherRecv.push(later(t.recv(left, tag(1, s), recvOptions(ctx, bytesOf(view(r - s))))));

  // Reduce-scatter.
  send(0, 0, view(r));
  for (let s = 0; s < steps; s++) {
    const incoming = floatsOf(await reduceRecv[s]);
    const mine = view(r - s - 1);
    if (!consumes) reduceInto(mine, incoming, op, ctx.add);
    if (s + slots < steps) postReduce(s + slots);
    if (s + 1 < steps) send(0, s + 1, mine);
  }

  // All-gather: our final piece first, then forward what arrives.
  const owned = view(r + 1);
  if (op === 'avg') divideInPlace(owned, n);
  send(1, 0, owned);
  for (let s = 0; s < steps; s++) {
    await gatherRecv[s];
    if (s + 1 < steps) send(1, s + 1, view(r - s));
  }
  await Promise.all(sends);
}
