/**
 * What every collective algorithm gets: the transport, its place in the group, the operation's
 * sequence number (so concurrent operations never confuse each other's messages), one deadline for
 * all its messages (deadline.ts), a scratch pool and the group's sum kernel (reduce_ops.ts). Algorithms are plain async functions over this context, one file each.
 */
import type { Deadline } from '../deadline.js';
import type { RecvOptions, SendOptions, Transport } from '../transport.js';
import type { Reducer } from './reduce_ops.js';
import type { ScratchPool } from './scratch.js';

export interface OpContext {
  readonly transport: Transport;
  readonly rank: number;
  readonly size: number;
  /** The operation's sequence number: the high word of every tag it uses. */
  readonly seq: number;
  /** Name for errors ("allreduce"). */
  readonly op: string;
  readonly timeoutMs: number;
  /** Shared by every send and receive of the operation: one timer, not one per message. */
  readonly deadline: Deadline;
  readonly scratch: ScratchPool;
  /** dst += src: the group's sum kernel (ProcessGroupOptions.reducer). */
  readonly add: Reducer;
}

const TAG_HI = 0x1_0000_0000;

/** The tag of message `index` within this operation. */
export function tagOf(ctx: OpContext, index: number): number {
  return ctx.seq * TAG_HI + index;
}

export function recvOptions(ctx: OpContext, into?: Uint8Array): RecvOptions {
  return { timeoutMs: ctx.timeoutMs, op: ctx.op, into, deadline: ctx.deadline };
}

export function sendOptions(ctx: OpContext): SendOptions {
  return { timeoutMs: ctx.timeoutMs, op: ctx.op, deadline: ctx.deadline };
}

/**
 * Marks a promise as handled now (it is awaited later): a message posted early that fails before we
 * get to it must not crash the process as an unhandled rejection.
 */
export function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Rank arithmetic on the ring. */
export function mod(i: number, n: number): number {
  return ((i % n) + n) % n;
}
