import { Command } from 'commander';
import { type WorkerFlags, runWorkerProcess } from '../launch/worker_process.js';
import { withAskedRank } from './ask_rank.js';
import { addConfigFlags, placementFromFile } from './config.js';
import { addAdvertiseFlags, addDiscoverFlags } from './discovery_flags.js';
import { nonNegativeInt, positiveInt } from './options.js';
import { printSummary } from './train.js';
import { addSinkFlags, addTrainFlags } from './train_flags.js';
import { addWorkerDashboardFlags } from './worker_dashboard.js';

export type { WorkerFlags };

export function workerCommand(): Command {
  const cmd = new Command('worker').description('one process of a cluster (--strategy allreduce, ps or async-ps); rank 0 hosts the rendezvous store');
  const placed = addWorkerDashboardFlags(addConfigFlags(addSinkFlags(addTrainFlags(cmd))))
    .option('--rank <n>', 'this process\'s rank (env RANK, SLURM_PROCID, OMPI_COMM_WORLD_RANK; or this host\'s place in the cluster config\'s host lists)', nonNegativeInt)
    .option('--world-size <n>', 'number of processes (env WORLD_SIZE, SLURM_NTASKS, OMPI_COMM_WORLD_SIZE)', positiveInt)
    .option('--master <host:port>', 'rendezvous address (env MASTER_ADDR, MASTER_PORT)');
  return addDiscoverFlags(addAdvertiseFlags(placed))
    .action(async (flags: WorkerFlags, cmd: Command) => runWorker({ ...flags, placementFrom: placementFromFile(cmd) }));
}

/** A worker (or the server): asks for its rank on a terminal when nothing gives it, runs, prints the summary. */
export async function runWorker(flags: WorkerFlags): Promise<void> {
  // A discovered worker's rank comes from the store, not from the terminal.
  await runWorkerProcess(flags.discover ? flags : await withAskedRank(flags), ({ result, dir }) => {
    if (result) printSummary(result, dir);
  });
}
