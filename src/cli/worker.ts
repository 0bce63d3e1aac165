import { Command } from 'commander';
import { rendezvous } from '../comm/rendezvous.js';
import { ProgressObserver } from '../metrics/progress_observer.js';
import { SmolError } from '../util/errors.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import { resolvePlacement } from '../launch/env.js';
import { experimentName, experimentPaths } from '../train/experiment.js';
import { runTraining } from '../train/run.js';
import { runSignature } from '../train/signature.js';
import { AllReduceStrategy } from '../train/strategies/allreduce.js';
import { resolveThreads } from '../train/threads.js';
import { nonNegativeInt, positiveInt } from './options.js';
import { printSummary } from './train.js';
import { type TrainFlags, addTrainFlags, configFrom } from './train_flags.js';

interface WorkerFlags extends TrainFlags {
  rank?: number;
  worldSize?: number;
  master?: string;
}

/** Set by the local launcher, which hosts the rendezvous store itself. */
export const LAUNCHER_STORE_ENV = 'SMOLCLUSTER_LAUNCHER_STORE';

export function workerCommand(): Command {
  const cmd = new Command('worker').description('one process of a cluster (all-reduce data parallel); rank 0 hosts the rendezvous store');
  return addTrainFlags(cmd)
    .option('--rank <n>', 'this process\'s rank (env RANK)', nonNegativeInt)
    .option('--world-size <n>', 'number of processes (env WORLD_SIZE)', positiveInt)
    .option('--master <host:port>', 'rendezvous address (env MASTER_ADDR, MASTER_PORT)')
    .action(async (flags: WorkerFlags) => runWorker(flags));
}

async function runWorker(flags: WorkerFlags): Promise<void> {
  const place = resolvePlacement(flags);
  if (flags.backend) setBackend(flags.backend);
  const threads = resolveThreads(flags.threads);
  backend().setThreads(threads);
  const config = configFrom(flags, threads);
  const timeoutMs = flags.timeout * 1000;
  const cluster = await rendezvous({
    rank: place.rank, worldSize: place.worldSize, masterHost: place.masterHost, masterPort: place.masterPort,
    hostStore: place.rank === 0 && process.env[LAUNCHER_STORE_ENV] !== '1',
    signature: runSignature(config), timeoutMs, group: { timeoutMs },
  });
  // A crashed peer is the root cause of whatever fails next. A rank that was waiting on a third
  // rank (which leaves as soon as it notices the crash) would otherwise blame that third rank.
  let lost: Error | null = null;
  cluster.transport.on('peerLost', (_peer: number, err: Error) => {
    lost ??= err;
  });
  try {
    const experiment = experimentPaths(flags.experimentsDir, flags.name ?? experimentName(config.model));
    const strategy = new AllReduceStrategy(cluster.group, { checksumEvery: flags.checksumEvery });
    const result = await runTraining({
      config, strategy, experiment, observer: new ProgressObserver(place.worldSize), output: flags.output, save: flags.save,
    });
    if (result) printSummary(result, experiment.dir);
  } catch (err) {
    if (!isCommFailure(err)) throw err;
    // The crash and the third rank's goodbye may be read in either order: give the first a moment.
    if (!lost) await new Promise((resolve) => setTimeout(resolve, 100));
    throw lost ?? err;
  } finally {
    await cluster.close();
  }
}

function isCommFailure(err: unknown): boolean {
  return err instanceof SmolError && (err.code === 'PEER' || err.code === 'TIMEOUT' || err.code === 'CLOSED');
}
