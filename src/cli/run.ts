import { Command, Option } from 'commander';
import { join } from 'node:path';
import { optionsToArgv } from '../config/options/argv.js';
import { TRAIN_OPTIONS } from '../config/options/index.js';
import { DATASETS } from '../train/run/config.js';
import { experimentName } from '../train/run/experiment.js';
import { ConfigError } from '../util/errors.js';
import { writeJson } from '../validate/files.js';
import { buildRunFile } from '../validate/run_file.js';
import { intList, nonNegativeInt, positiveInt, positiveNumber } from './options.js';
import type { PrecisionChoice } from '../tensor/precision.js';
import type { DeviceChoice } from '../config/options/choices.js';
import { commanderOption } from './option_table.js';
import { trainInProcess } from './train.js';
import { type TrainFlags, addTrainFlags } from './train_flags.js';

/** Strategies `run` can use: `local` trains in this process; the others launch worker processes. */
export const RUN_STRATEGIES = ['auto', 'local', 'allreduce', 'ps', 'async-ps'] as const;

/** What a run takes; `minicluster run` fills it from MiniCluster's flags (minicluster_run.ts). */
export interface RunFlags {
  workers: number;
  steps: number;
  batchSize: number;
  seed: number;
  strategy: (typeof RUN_STRATEGIES)[number];
  model: 'mlp' | 'cnn';
  hidden?: number[];
  dataset: (typeof DATASETS)[number];
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: number;
  output?: string;
  name?: string;
  experimentsDir: string;
  threads?: number;
  backend?: 'js' | 'native';
  timeout: number;
  checksumEvery: number;
  fault?: string[];
  precision?: PrecisionChoice;
  device?: DeviceChoice;
}

export function runCommand(): Command {
  return new Command('run')
    .description('a measured training run for validation and baselines: trains (in this process or as a local cluster) and writes run.json (docs/RUN.md)')
    .option('--workers <n>', 'worker processes (the global batch is workers × batch size)', positiveInt, 1)
    .option('--steps <n>', 'optimizer steps', positiveInt, 50)
    .option('--batch-size <n>', 'samples per step per worker, as in train', positiveInt, 32)
    .option('--seed <n>', 'one seed for the data, initialisation, shuffling and sharding', nonNegativeInt, 0)
    .addOption(new Option('--strategy <name>', 'local (one process); allreduce, ps, async-ps (worker processes; ps adds a server); auto: local for 1 worker, else allreduce').choices(RUN_STRATEGIES).default('auto'))
    .addOption(new Option('--model <type>', 'model').choices(['mlp', 'cnn']).default('mlp'))
    .option('--hidden <widths>', 'MLP hidden widths, comma-separated (default 128)', intList)
    .addOption(new Option('--dataset <name>', 'training data').choices(DATASETS).default('synthetic-regression'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adam', 'adamw']).default('adam'))
    .option('--lr <rate>', 'learning rate (constant)', positiveNumber, 0.01)
    .option('--output <file>', 'where to write run.json (also written into the experiment folder)')
    .option('--name <name>', 'experiment name (default: generated)')
    .option('--experiments-dir <dir>', 'where experiment folders are written', 'experiments')
    .option('--threads <n>', 'compute threads per process', positiveInt)
    .addOption(new Option('--backend <name>', 'tensor backend').choices(['native', 'js']))
    .option('--timeout <seconds>', 'deadline of every wait on a peer', positiveNumber, 60)
    .option('--checksum-every <steps>', 'compare parameter checksums across workers every N steps (0: never)', nonNegativeInt, 100)
    .addOption(commanderOption('precision', TRAIN_OPTIONS.precision))
    .addOption(commanderOption('device', TRAIN_OPTIONS.device))
    .option('--fault <spec>', 'inject a fault (docs/VALIDATION.md), e.g. skip-allreduce', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (flags: RunFlags) => {
      process.exitCode = await runAndWrite(flags);
    });
}

/** `train` flags from a command line, every unset flag at train's own default. */
function trainFlags(args: string[]): TrainFlags {
  const cmd = addTrainFlags(new Command('run').exitOverride());
  cmd.parse(args, { from: 'user' });
  return cmd.opts<TrainFlags>();
}

/** Trains, writes run.json (the experiment's and --output's), prints one line; returns the exit code. */
export async function runAndWrite(f: RunFlags): Promise<number> {
  const strategy = f.strategy === 'auto' ? (f.workers > 1 ? 'allreduce' : 'local') : f.strategy;
  if (strategy === 'local' && f.workers > 1) {
    throw new ConfigError('command line', '--strategy', `local trains in one process; use allreduce (or auto) for --workers ${f.workers}`);
  }
  // The pid keeps two runs started within the same second apart.
  const name = f.name ?? `${experimentName(`run-${f.model}`)}-${process.pid}`;
  // run's values as the train flags they mean (the option tables' inverse), parsed as `train` parses them.
  const flags = trainFlags(optionsToArgv(TRAIN_OPTIONS, {
    model: f.model, dataset: f.dataset, batchSize: f.batchSize, seed: f.seed, optimizer: f.optimizer, lr: f.lr, schedule: 'constant',
    // Enough epochs for the steps whatever the dataset's size; --max-steps ends the run.
    epochs: f.steps, maxSteps: f.steps,
    name, experimentsDir: f.experimentsDir, timeout: f.timeout, checksumEvery: f.checksumEvery,
    hidden: f.hidden, threads: f.threads, backend: f.backend, fault: f.fault, precision: f.precision, device: f.device, strategy: strategy !== 'local' ? strategy : undefined,
  } satisfies Partial<TrainFlags>));
  // The train machinery underneath: the same in-process run or local cluster as `smolcluster train`.
  if (strategy === 'local') {
    await trainInProcess(flags);
  } else {
    const { launchLocalCluster } = await import('../launch/local.js');
    const code = await launchLocalCluster({ ...flags, workers: f.workers });
    if (code !== 0) {
      process.stderr.write('smolcluster: error: the run failed; no run.json written\n');
      return code;
    }
  }
  const dir = join(f.experimentsDir, name);
  const runFile = buildRunFile(dir);
  writeJson(join(dir, 'run.json'), runFile);
  if (f.output) writeJson(f.output, runFile);
  process.stdout.write(
    `run.json: ${runFile.num_steps} steps × ${runFile.global_batch_size} samples (${runFile.strategy}, ${runFile.num_workers} worker${runFile.num_workers > 1 ? 's' : ''}), ` +
      `final loss ${runFile.final_loss.toFixed(6)}, ${Math.round(runFile.average_throughput_samples_per_sec)} samples/s, ` +
      `${runFile.average_step_time_ms.toFixed(2)} ms/step → ${f.output ?? join(dir, 'run.json')}\n`,
  );
  return 0;
}
