import { Command } from 'commander';
import { ProgressObserver } from '../metrics/progress_observer.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import { experimentName, experimentPaths } from '../train/experiment.js';
import type { TrainResult } from '../train/result.js';
import { runTraining } from '../train/run.js';
import { LocalStrategy } from '../train/strategies/local.js';
import { resolveThreads } from '../train/threads.js';
import { positiveInt } from './options.js';
import { type TrainFlags, addTrainFlags, configFrom } from './train_flags.js';

interface TrainCommandFlags extends TrainFlags {
  workers: number;
}

export function trainCommand(): Command {
  const cmd = new Command('train').description('train a model on MNIST: in this process, or as a local cluster of --workers processes');
  return addTrainFlags(cmd)
    .option('--workers <n>', 'worker processes on this machine (all-reduce data parallel); 1 trains in this process', positiveInt, 1)
    .action(async (flags: TrainCommandFlags) => runTrain(flags));
}

async function runTrain(flags: TrainCommandFlags): Promise<void> {
  if (flags.workers > 1) {
    const { launchLocalCluster } = await import('../launch/local.js');
    process.exitCode = await launchLocalCluster(flags);
    return;
  }
  if (flags.backend) setBackend(flags.backend);
  const threads = resolveThreads(flags.threads);
  backend().setThreads(threads);
  const config = configFrom(flags, threads);
  const experiment = experimentPaths(flags.experimentsDir, flags.name ?? experimentName(config.model));
  const result = await runTraining({
    config, strategy: new LocalStrategy(), experiment, observer: new ProgressObserver(), output: flags.output, save: flags.save,
  });
  if (result) printSummary(result, experiment.dir);
}

/** The one-line summary every training run ends with. */
export function printSummary(r: TrainResult, dir: string): void {
  const threads = `${r.threads} thread${r.threads > 1 ? 's' : ''}${r.workers > 1 ? ' per worker' : ''}`;
  process.stdout.write(
    `${r.model} on mnist${r.workers > 1 ? ` with ${r.workers} workers (${r.strategy})` : ''}: ${r.steps} steps, ` +
      `final loss ${r.final_loss.toFixed(4)}, test accuracy ${((r.test_accuracy ?? 0) * 100).toFixed(2)}%, ` +
      `${Math.round(r.samples_per_sec)} samples/s (${r.backend}, ${threads}), ${r.wall_seconds.toFixed(1)} s; results in ${dir}\n`,
  );
}
