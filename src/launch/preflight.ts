import { modelDatasetMismatch } from '../config/compatibility.js';
import { initFromFile } from '../nn/interchange/model_io.js';
import { createModel } from '../nn/models/index.js';
import type { TrainConfig } from '../train/config.js';
import { specFor } from '../train/loop.js';
import { loadTrainData } from '../train/run.js';
import { ConfigError } from '../util/errors.js';

/**
 * What can be found wrong before any worker starts, checked once: the model against the dataset
 * (always; free), and, when the run names them, the data files and the --init weights (loaded into
 * the model they must fit). A launcher that skipped this printed the same root cause once per rank
 * and ended on a generic "worker rank 0 exited with code 1".
 */
export function preflight(config: TrainConfig): void {
  checkModelFitsDataset(config);
  if (!config.init && !config.dataDir && !config.dataFile) return;
  const data = loadTrainData(config);
  if (!config.init) return;
  const spec = specFor(config, data.train);
  initFromFile(config.init, createModel(spec, config.seed), spec);
}

/** Refuses a model that cannot read the dataset's samples, naming what would fit (config/compatibility.ts). */
export function checkModelFitsDataset(config: Pick<TrainConfig, 'model' | 'dataset'>, file = 'command line'): void {
  const why = modelDatasetMismatch(config.model, config.dataset);
  if (why) throw new ConfigError(file, file === 'command line' ? '--model, --dataset' : 'model, dataset', why);
}
