/**
 * The device-aware collective facade: collectives over storages instead of host arrays, so no
 * strategy stages values by hand. Where the host addresses a storage's memory (the cpu) the
 * collective runs in place on that memory: no read, no copy, no write-back (the all-reduce of the
 * flat gradient arena stays zero-copy). Elsewhere (a GPU) each call reads its storages, issues its
 * collective once every earlier call has issued its own (reads finish in any order; every rank
 * must issue collectives in the same order), and writes what it received back to the device.
 */
import type {
  AllGatherOptions, AllReduceOptions, CollectiveOptions, P2POptions, ProcessGroup, ReduceScatterOptions,
} from '../../comm/process_group.js';
import type { Storage } from '../../tensor/storage.js';
import { install, valuesToReceive, valuesToSend } from '../../tensor/boundary/host_values.js';

/** What a collective does with a storage: sends its values, replaces them, or both (in place). */
type Access = 'send' | 'receive' | 'update';
type Part = readonly [Storage<Float32Array>, Access];

/** The collectives of a group the facade needs (ProcessGroup's, or a sub-group's). */
export type StorageGroup = Pick<ProcessGroup, 'rank' | 'size' | 'allReduce' | 'broadcast' | 'allGather' | 'reduceScatter' | 'send' | 'recv'>;

export class StorageCollectives {
  /** Calls whose values are not all on the host yet (while any wait, later calls queue behind them). */
  private queued = 0;
  /** Settles once the latest queued call has issued its collective. */
  private lastIssued: Promise<unknown> = Promise.resolve();

  constructor(readonly group: StorageGroup) {}

  /** Sums (or averages) the storage across the group, in place. */
  allReduce(storage: Storage<Float32Array>, opts?: AllReduceOptions): Promise<void> {
    return this.run([[storage, 'update']], ([v]) => this.group.allReduce(v, opts));
  }

  /** Root's values into every rank's storage. */
  broadcast(storage: Storage<Float32Array>, root: number, opts?: CollectiveOptions): Promise<void> {
    const access = this.group.rank === root ? 'send' : 'receive';
    return this.run([[storage, access]], ([v]) => this.group.broadcast(v, root, opts));
  }

  /** Every rank's input, rank-major, into each rank's output (ProcessGroup.allGather). */
  allGather(input: Storage<Float32Array>, output: Storage<Float32Array>, opts?: AllGatherOptions): Promise<void> {
    return this.run([[input, 'send'], [output, 'receive']], ([i, o]) => this.group.allGather(i, o, opts));
  }

  /** The reduced input's segment of this rank into output (ProcessGroup.reduceScatter). */
  reduceScatter(input: Storage<Float32Array>, output: Storage<Float32Array>, opts?: ReduceScatterOptions): Promise<void> {
    return this.run([[input, 'send'], [output, 'receive']], ([i, o]) => this.group.reduceScatter(i, o, opts));
  }

  /** Sends each storage's values to `dst`, one message each, in order. */
  send(storages: readonly Storage<Float32Array>[], dst: number, opts?: P2POptions): Promise<void> {
    return this.run(storages.map((s) => [s, 'send'] as const), (values) => Promise.all(values.map((v) => this.group.send(v, dst, opts))));
  }

  /** Receives one message from `src` into each storage, in order (the counterpart of send). */
  recv(storages: readonly Storage<Float32Array>[], src: number, opts?: P2POptions): Promise<void> {
    return this.run(storages.map((s) => [s, 'receive'] as const), (values) => Promise.all(values.map((v) => this.group.recv(v, src, opts))));
  }

  /**
   * Issues `issue` over `values` once they are all on the host and every call made before it has
   * issued its own collective (reads of different sizes finish in any order; the process group
   * numbers collectives in call order). Values already on the host with nothing queued (the cpu)
   * are issued at once, as a direct call on the group would be. Resolves to the values once the
   * collective is done. For collectives over host buffers of the caller's own (a packed gradient
   * bucket) beside the storage ones: they keep the one call order.
   */
  inOrder(values: readonly (Float32Array | Promise<Float32Array>)[], issue: (values: Float32Array[]) => Promise<unknown>): Promise<Float32Array[]> {
    const ready = values.every((p): p is Float32Array => p instanceof Float32Array);
    if (ready && this.queued === 0) {
      const now = values as Float32Array[];
      return issue(now).then(() => now);
    }
    this.queued++;
    const previous = this.lastIssued;
    const issued = (async () => {
      try {
        const all = await Promise.all(values);
        await previous;
        return { all, done: issue(all) };
      } finally {
        this.queued--;
      }
    })();
    this.lastIssued = issued.catch(() => undefined);
    return issued.then(async ({ all, done }) => {
      await done;
      return all;
    });
  }

  /** The collective over the storages' host values, in call order; then what it received is installed (a write to the device; nothing on the cpu). */
  private async run(parts: readonly Part[], issue: (values: Float32Array[]) => Promise<unknown>): Promise<void> {
    const values = await this.inOrder(parts.map(([s, access]) => (access === 'receive' ? valuesToReceive(s) : valuesToSend(s))), issue);
    parts.forEach(([s, access], i) => {
      if (access !== 'send') install(s, values[i]);
    });
  }
}
