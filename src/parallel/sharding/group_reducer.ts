/**
 * tensor/'s GroupReducer over a communicator's in-place all-reduce (comm's ProcessGroup, or any
 * object with its rank, size and allReduce): the sum the sharded layers' group ops make.
 */
import type { GroupReducer } from '../../tensor/group_sum.js';
import type { Storage } from '../../tensor/storage.js';

/** What a tensor-parallel group is given: an in-place sum over its ranks (a ProcessGroup is one). */
export interface TensorParallelComm {
  readonly rank: number;
  readonly size: number;
  allReduce(data: Float32Array): Promise<unknown>;
}

/**
 * Sums a storage over the group in place: its values are read (an owned copy on every device,
 * awaited), summed on the host and written back. One path for every device: the copy costs an
 * activation-sized memcpy on the cpu, small beside the exchange itself.
 */
export function groupReducer(comm: TensorParallelComm): GroupReducer & { readonly rank: number } {
  return {
    rank: comm.rank,
    size: comm.size,
    async sumInPlace(s: Storage): Promise<void> {
      const values = (await s.read()) as Float32Array;
      await comm.allReduce(values);
      s.write(values);
    },
  };
}

/**
 * A group whose communicator comes later: a strategy builds the model (and its sharded layers)
 * before it splits the world into groups, then binds the tensor-parallel group here.
 */
export class PendingGroup implements GroupReducer {
  private reducer: GroupReducer | null = null;

  constructor(readonly rank: number, readonly size: number) {}

  bind(comm: TensorParallelComm): void {
    if (comm.rank !== this.rank || comm.size !== this.size) throw new Error(`tensor parallel: the group is rank ${comm.rank} of ${comm.size}, the model was built for rank ${this.rank} of ${this.size}`);
    this.reducer = groupReducer(comm);
  }

  sumInPlace(values: Storage): Promise<void> {
    if (!this.reducer) throw new Error('tensor parallel: the model summed over its group before the group was set up');
    return this.reducer.sumInPlace(values);
  }
}
