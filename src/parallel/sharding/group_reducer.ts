/**
 * tensor/'s GroupReducer over a communicator's in-place all-reduce (comm's ProcessGroup, or any
 * object with its rank, size and allReduce): the sum the sharded layers' group ops make.
 */
import type { GroupReducer } from '../../tensor/group_sum.js';
import { CPU, type Storage } from '../../tensor/storage.js';

/** What a tensor-parallel group is given: an in-place sum over its ranks (a ProcessGroup is one). */
export interface TensorParallelComm {
  readonly rank: number;
  readonly size: number;
  allReduce(data: Float32Array): Promise<unknown>;
}

/**
 * Sums a storage over the group in place: on the cpu its own memory is all-reduced; a GPU's
 * values are read (awaited), summed on the host and written back.
 */
export function groupReducer(comm: TensorParallelComm): GroupReducer & { readonly rank: number } {
  return {
    rank: comm.rank,
    size: comm.size,
    async sumInPlace(s: Storage): Promise<void> {
      if (s.device === CPU) {
        await comm.allReduce(s.readSync() as Float32Array);
        return;
      }
      const values = (await s.read()) as Float32Array;
      await comm.allReduce(values);
      s.write(values);
    },
  };
}
