import { Command } from 'commander';
import { ConfigError } from '../util/errors.js';
import { positiveInt, positiveNumber, nonNegativeInt } from './options.js';
import { runAndWrite } from './run.js';

/** MiniCluster's `run` defaults, verbatim (its cli.py), so its README's commands mean what they meant there. */
export const MINICLUSTER_RUN_DEFAULTS = {
  workers: 2, steps: 100, batchSize: 32, learningRate: 0.01, hiddenSize: 128, numLayers: 2, seed: 42,
  output: './minicluster_results/run_metrics.json',
} as const;

interface MiniRunFlags {
  workers: number;
  steps: number;
  batchSize: number;
  learningRate: number;
  hiddenSize: number;
  numLayers: number;
  seed: number;
  output: string;
  experimentsDir: string;
  verbose?: boolean;
}

/**
 * The batch each worker takes when `global` samples are split over `workers`: MiniCluster's
 * --batch-size is the global batch (its `run --workers 1` vs `--workers 2` at the same batch size
 * is a like-for-like pair only under that reading).
 */
export function perWorkerBatch(global: number, workers: number): number {
  if (global % workers !== 0) {
    throw new ConfigError('command line', '--batch-size', `the global batch ${global} does not split evenly over ${workers} workers; use a multiple of ${workers}`);
  }
  return global / workers;
}

/** MiniCluster's "number of layers" counts the Linear layers: 2 is input → hidden → output. */
export function hiddenWidths(hiddenSize: number, numLayers: number): number[] {
  if (numLayers < 2) throw new ConfigError('command line', '--num-layers', `${numLayers}: an MLP needs at least 2 layers (input → hidden → output)`);
  return Array.from({ length: numLayers - 1 }, () => hiddenSize);
}

export function miniclusterRunCommand(): Command {
  const d = MINICLUSTER_RUN_DEFAULTS;
  return new Command('run')
    .description('a measured training run on synthetic regression data (MLP, Adam, MSE) written as run.json; --batch-size is the GLOBAL batch, split over the workers')
    .option('--workers <n>', 'worker processes', positiveInt, d.workers)
    .option('--steps <n>', 'training steps', positiveInt, d.steps)
    .option('--batch-size <n>', 'global batch size: each of the N workers takes batch-size / N', positiveInt, d.batchSize)
    .option('--learning-rate <rate>', 'Adam learning rate (constant)', positiveNumber, d.learningRate)
    .option('--hidden-size <n>', 'hidden layer width', positiveInt, d.hiddenSize)
    .option('--num-layers <n>', 'Linear layers of the MLP (2: one hidden layer)', positiveInt, d.numLayers)
    .option('--seed <n>', 'one seed for the data, initialisation, shuffling and sharding', nonNegativeInt, d.seed)
    .option('--output <file>', 'where to write run.json (missing folders are created)', d.output)
    .option('--experiments-dir <dir>', 'where the run\'s experiment folder goes', 'experiments')
    .option('--verbose', 'print the configuration first')
    .action(async (f: MiniRunFlags) => {
      const batchSize = perWorkerBatch(f.batchSize, f.workers);
      const hidden = hiddenWidths(f.hiddenSize, f.numLayers);
      if (f.verbose) {
        process.stdout.write(
          `workers ${f.workers}, steps ${f.steps}, global batch ${f.batchSize} (${batchSize} per worker), learning rate ${f.learningRate}, ` +
            `hidden ${hidden.join(',')}, seed ${f.seed}\n`,
        );
      }
      process.exitCode = await runAndWrite({
        workers: f.workers, steps: f.steps, batchSize, seed: f.seed, strategy: 'auto', model: 'mlp', hidden,
        dataset: 'synthetic-regression', optimizer: 'adam', lr: f.learningRate, output: f.output, experimentsDir: f.experimentsDir,
        timeout: 60, checksumEvery: 100,
      });
    });
}
