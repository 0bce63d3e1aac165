/** tensor/'s GroupExchanger over a process group's all-to-all (comm/collectives/alltoall.ts). */
import type { GroupExchanger } from '../../tensor/group_exchange.js';

/** What the exchanger needs of a communicator: comm's ProcessGroup has it. */
export interface AllToAllComm {
  readonly rank: number;
  readonly size: number;
  allToAll(input: Float32Array, opts: { sendCounts?: readonly number[]; recvCounts?: readonly number[] }): Promise<Float32Array>;
}

export function groupExchanger(comm: AllToAllComm): GroupExchanger {
  return {
    rank: comm.rank,
    size: comm.size,
    exchange: (values, sendCounts, recvCounts) => comm.allToAll(values, { sendCounts, recvCounts }),
  };
}
