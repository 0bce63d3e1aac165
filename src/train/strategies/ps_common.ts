/**
 * What the parameter-server strategies (ps, async-ps) share: who trains which shard, the small
 * fixed-size message headers, and copying the model to every rank at the start.
 */
import { hostArena } from '../boundary/host_arena.js';
import { checksumOf as checksumValues } from '../../nn/arena.js';
import type { ProcessGroup } from '../../comm/process_group.js';
import type { DataShard, StrategyContext } from './strategy.js';
import { broadcastStorages, modelStorages } from '../boundary/model_buffers.js';
import { StorageCollectives } from '../../parallel/boundary/storage_collectives.js';

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
  /** server → a (re)joining worker: a header, then the model state. */
  welcomeHead: 0x5053_0005,
  welcomeBody: 0x5053_0006,
  /** worker → server: its run totals at the end (gatherAtServer). */
  gather: 0x5053_0007,
} as const;

/**
 * How a parameter-server process survives the loss of its peers (comm/hub.ts does the sockets):
 * the server re-admits a worker that comes back; a worker re-dials a server that restarted.
 */
export interface PsRecovery {
  /** This process replaces one that died: no start-up broadcast; the server welcomes each worker. */
  restarted: boolean;
  /** Server: called with each worker's rank when it (re)connects, from now on (and for those that came already). */
  onRejoin?(listener: (rank: number) => void): void;
  /** Worker: re-dials the server after the connection to it was lost (backoff, deadline naming the server). */
  reconnect?(): Promise<void>;
  /** Server: worker `rank` was re-admitted at `version` (for the run's events). */
  rejoined?(rank: number, version: number): void;
  /** Server: the last update is out; a worker that comes back now has nothing to rejoin. */
  over?(): Promise<void>;
}

/** Header slots are float64 (integers up to 2^53 are exact). */
export const HEAD_SLOTS = 8;

/**
 * Whether a parameter-server run can re-admit workers and survive a server restart. ps: its
 * workers' steps must follow the server's version (ParamServerWorker.steps), which plain shards
 * with one batch per step allow (not measured batch shares, not accumulated micro-batches).
 * async-ps: a restarted worker goes on from its own position (the loop's plan from startStep),
 * which needs plain shards.
 */
export function psRecoverable(strategy: string | undefined, o: { enableLoadBalancing?: boolean; gradAccum?: number }): boolean {
  if (strategy === 'async-ps') return !o.enableLoadBalancing;
  return strategy === 'ps' && !o.enableLoadBalancing && (o.gradAccum ?? 1) <= 1;
}

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
  await broadcastStorages(new StorageCollectives(group), modelStorages(ctx.model), SERVER_RANK);
}

/**
 * The end-of-run all-gather over the star (no worker-to-worker link, which a re-admitted worker
 * does not have): workers send their vector to the server; the server fills the rows of the
 * workers it reaches within the deadline (zeros for the others). Only the server's result is whole.
 */
export async function gatherAtServer(group: ProcessGroup, local: Float32Array, from: number[], timeoutMs: number): Promise<Float32Array> {
  const out = new Float32Array(local.length * group.size);
  out.set(local, group.rank * local.length);
  if (group.rank !== SERVER_RANK) {
    await group.send(local, SERVER_RANK, { tag: TAG.gather });
    return out;
  }
  await Promise.all(from.map(async (w) => {
    try {
      await group.recv(out.subarray(w * local.length, (w + 1) * local.length), w, { tag: TAG.gather, timeoutMs });
    } catch (err) {
      process.stderr.write(`smolcluster: ps server: no totals from worker rank ${w} (${(err as Error).message})\n`);
    }
  }));
  return out;
}

/** The parameter checksum as a number (FNV-1a, see ParamArena.checksum; a GPU worker's parameters read to the host). */
export async function checksumOf(ctx: StrategyContext): Promise<number> {
  return parseInt(checksumValues(await hostArena(ctx.model.arena()).params(false)), 16);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
