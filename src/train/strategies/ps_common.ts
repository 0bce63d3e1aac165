/**
 * What the parameter-server strategies (ps, async-ps) share: who trains which shard, the small
 * fixed-size message headers, and copying the model to every rank at the start.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { DataShard, StrategyContext } from '../strategy.js';

/** Rank 0 is the server; ranks 1..N-1 are workers. */
export const SERVER_RANK = 0;

/** User tags of the parameter-server messages (per ordered pair of ranks, FIFO per tag). */
export const TAG = {
  /** worker → server: a header, then the payload. */
  pushHead: 0x5053_0001,
  pushBody: 0x5053_0002,
  /** server → worker: a header, then the payload. */
  replyHead: 0x5053_0003,
  replyBody: 0x5053_0004,
} as const;

/** Header slots are float64 (integers up to 2^53 are exact). */
export const HEAD_SLOTS = 8;

/**
 * The data shard of a rank. With `serverTrains`, every rank trains shard `rank` of N; otherwise
 * workers train shard `rank-1` of N-1 and the server takes the same number of steps without data.
 */
export function psShard(rank: number, worldSize: number, serverTrains: boolean): DataShard {
  if (serverTrains || worldSize === 1) return { index: rank, count: worldSize, compute: true };
  if (rank === SERVER_RANK) return { index: 0, count: worldSize - 1, compute: false };
  return { index: rank - 1, count: worldSize - 1, compute: true };
}

/** Every rank starts from the server's parameters and buffers. */
export async function broadcastModel(group: ProcessGroup, ctx: StrategyContext): Promise<void> {
  await group.broadcast(ctx.model.arena().data, SERVER_RANK);
  for (const [, buf] of ctx.model.namedBuffers()) await group.broadcast(buf, SERVER_RANK);
}

/** The parameter checksum as a number (FNV-1a, see ParamArena.checksum). */
export function checksumOf(ctx: StrategyContext): number {
  return parseInt(ctx.model.arena().checksum(), 16);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
