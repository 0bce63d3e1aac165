import { Command } from 'commander';
import { fanOut } from '../metrics/fanout.js';
import { ProgressObserver } from '../metrics/progress_observer.js';
import { openWandb } from '../metrics/wandb.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import { experimentName, experimentPaths, claimNamedRun } from '../train/experiment.js';
import { checkRunInputs } from '../launch/preflight.js';
import type { TrainResult } from '../train/result.js';
import { parseFaults } from '../train/faults.js';
import { runTraining } from '../train/run.js';
import { LocalStrategy } from '../train/strategies/local.js';
import { resolveThreads } from '../train/threads.js';
import { addConfigFlags } from './config.js';
import { positiveInt } from './options.js';
import { type TrainFlags, addDashboardFlags, addSinkFlags, addTrainFlags, checkpointOptions, configFrom, tensorBackend } from './train_flags.js';

interface TrainCommandFlags extends TrainFlags {
  workers: number;
}

export function trainCommand(): Command {
  const cmd = new Command('train').description('train a model on MNIST: in this process, or as a local cluster of --workers processes');
  return addConfigFlags(addDashboardFlags(addSinkFlags(addTrainFlags(cmd))))
    .option('--workers <n>', 'worker processes on this machine (all-reduce data parallel); 1 trains in this process', positiveInt, 1)
    .action(async (flags: TrainCommandFlags) => runTrain(flags));
}

async function runTrain(flags: TrainCommandFlags): Promise<void> {
  // ps / async-ps: a server process besides the --workers workers.
  if (flags.workers > 1 || (flags.strategy !== undefined && flags.strategy !== 'allreduce')) {
    const { launchLocalCluster } = await import('../launch/local.js');
    process.exitCode = await launchLocalCluster(flags);
    return;
  }
  await trainInProcess(flags);
}

/** A run in this process (strategy `local`), summary printed; `run` uses it too. */
export async function trainInProcess(flags: TrainFlags): Promise<{ result: TrainResult | null; dir: string }> {
  const tensor = tensorBackend(flags.backend);
  if (tensor) setBackend(tensor);
  const threads = resolveThreads(flags.threads);
  backend().setThreads(threads);
  const config = configFrom(flags, threads);
  checkRunInputs(config);
  const faults = parseFaults(flags.fault);
  const name = flags.name ?? experimentName(config.model, undefined, flags.experimentsDir);
  const experiment = experimentPaths(flags.experimentsDir, name);
  if (flags.name !== undefined) claimNamedRun(experiment.dir, flags);
  const dashboard = flags.dashboard
    ? await (await import('../dashboard/live.js')).openLiveDashboard({ dir: experiment.dir, name, port: flags.port, host: flags.dashboardHost, thread: true, resuming: flags.resume !== undefined })
    : null;
  const wandb = flags.wandb ? await openWandb({ project: flags.wandbProject, name, config }) : null;
  let finished = false;
  try {
    const progress = new ProgressObserver();
    const result = await runTraining({
      config, strategy: new LocalStrategy(), experiment, observer: wandb ? fanOut(progress, wandb) : progress,
      output: flags.output, save: flags.save, faults, trace: flags.trace, checkpoints: checkpointOptions(flags, experiment.dir),
    });
    if (result) printSummary(result, experiment.dir);
    finished = true;
    return { result, dir: experiment.dir };
  } finally {
    await wandb?.finish();
    if (dashboard && finished) await (await import('../dashboard/live.js')).endLiveDashboard(dashboard, experiment.dir);
    else await dashboard?.close();
  }
}

/** " with 2 workers and a server (ps)": who trained, and the server that only aggregated. */
function clusterOf(r: TrainResult): string {
  const servers = (r.world_size ?? r.workers) - r.workers;
  if (r.workers <= 1 && servers === 0) return '';
  return ` with ${r.workers} worker${r.workers > 1 ? 's' : ''}${servers > 0 ? ` and a server` : ''} (${r.strategy})`;
}

/** The one-line summary every training run ends with. */
export function printSummary(r: TrainResult, dir: string): void {
  const threads = `${r.threads} thread${r.threads > 1 ? 's' : ''}${r.workers > 1 ? ' per worker' : ''}`;
  process.stdout.write(
    `${r.model} on ${r.config.dataset}${clusterOf(r)}: ${r.steps} steps, ` +
      `final loss ${r.final_loss.toFixed(4)}, ` +
      `${r.test_accuracy === null ? `test loss ${(r.test_loss ?? NaN).toFixed(4)}` : `test accuracy ${(r.test_accuracy * 100).toFixed(2)}%`}, ` +
      `${r.test_perplexity !== undefined ? `test perplexity ${r.test_perplexity.toFixed(2)}, ` : ''}` +
      `${Math.round(r.samples_per_sec)} samples/s (${r.backend}, ${threads}), ${r.wall_seconds.toFixed(1)} s; results in ${dir}\n`,
  );
}
