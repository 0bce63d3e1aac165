/**
 * A run in this process (strategy `local`): `train` without --workers, and `run --strategy local`.
 * The engine and threads, the experiment folder, the dashboard and W&B around the one loop.
 */
import { fanOut } from '../metrics/fanout.js';
import { resolveDevice } from '../train/engine/device.js';
import { ProgressObserver } from '../metrics/progress_observer.js';
import { openWandb } from '../metrics/wandb.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import { claimNamedRun, experimentName, resumedName, experimentPaths } from '../train/run/experiment.js';
import { checkRunInputs } from './preflight.js';
import { parseFaults } from '../train/loop/faults.js';
import { settlePrecision } from '../train/engine/precision.js';
import { runTraining } from '../train/run/run.js';
import { LocalStrategy } from '../train/strategies/local.js';
import { resolveThreads } from '../train/engine/threads.js';
import { type TrainFlags, type WorkerOutcome, checkpointOptions, configFrom, tensorBackend } from './worker_flags.js';
import { readInitGguf } from '../train/run/init_source.js';

/** Trains in this process; `onResult` hears the result before the dashboard and W&B close. */
export async function trainInThisProcess(flags: TrainFlags, onResult: (o: WorkerOutcome) => void = () => {}): Promise<WorkerOutcome> {
  const tensor = tensorBackend(flags.backend);
  if (tensor) setBackend(tensor);
  const chosenDevice = await resolveDevice(flags.device);
  if (chosenDevice.note) process.stderr.write(`smolcluster: ${chosenDevice.note}\n`);
  const threads = resolveThreads(flags.threads);
  backend().setThreads(threads);
  // An --init GGUF file's header, read once: its spec and tokenizer are asked for synchronously later.
  await readInitGguf(flags.init);
  const config = configFrom(flags, threads);
  config.device = chosenDevice.device;
  checkRunInputs(config);
  // auto measured on this engine and threads, before W&B and the dashboard see the config.
  settlePrecision(config);
  const faults = parseFaults(flags.fault);
  const name = flags.name ?? resumedName(flags, config.model) ?? experimentName(config.model, undefined, flags.experimentsDir);
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
      output: flags.output, save: flags.save, saveDtype: flags.saveDtype, saveQuantize: flags.saveQuantize, saveShardSize: flags.saveShardSize, faults, trace: flags.trace, checkpoints: checkpointOptions(flags, experiment.dir),
    });
    onResult({ result, dir: experiment.dir });
    finished = true;
    return { result, dir: experiment.dir };
  } finally {
    await wandb?.finish();
    // A finished run's dashboard stays up until Ctrl-C when a person is watching (dashboard/live.ts).
    if (dashboard && finished) await (await import('../dashboard/live.js')).endLiveDashboard(dashboard, experiment.dir);
    else await dashboard?.close();
    // Dawn keeps a process alive while its device is open.
    chosenDevice.release();
  }
}
