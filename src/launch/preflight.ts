import { modelDatasetMismatch } from '../config/compatibility.js';
import { throwProblems } from '../config/problems.js';
import { dataFileProblem } from '../data/load.js';
import { ggufHeaderRead } from '../nn/interchange/gguf.js';
import { ggufSources } from '../nn/interchange/gguf_llama.js';
import { initFromFile } from '../nn/interchange/model_io.js';
import { type LlamaSpec, createModel } from '../nn/models/index.js';
import { buildDeferred } from '../tensor/deferred_init.js';
import { initIsGguf, initIsQuantized } from '../train/run/init_source.js';
import { type StageSplit, checkTrainingMemory } from '../train/run/memory_estimate.js';
import { withoutRandomInit } from '../tensor/init_scope.js';
import type { TrainConfig } from '../train/run/config.js';
import { specFor } from '../train/loop/loop.js';
import { loadTrainData } from '../train/run/run.js';
import { ConfigError } from '../util/errors.js';

/**
 * What can be found wrong before any worker starts, checked once: the model against the dataset
 * (always; free), and, when the run names them, the data files and the --init weights (loaded into
 * the model they must fit), and whether the workers' estimated memory fits this machine. A launcher that skipped this printed the same root cause once per rank
 * and ended on a generic "worker rank 0 exited with code 1".
 */
export function preflight(config: TrainConfig, processes = 1, split?: StageSplit): void {
  checkRunInputs(config);
  if (!config.init && !config.dataDir && !config.dataFile) return;
  const data = loadTrainData(config);
  if (!config.init) return;
  const spec = specFor(config, data.train);
  // The workers of this machine together, before any of them (or this launcher) loads a weight.
  checkTrainingMemory(config, spec, data.train.inputShape[0], processes, split);
  // A GGUF file's tensors are matched to the model by name and shape, none read (a quantized base is the big file).
  if (initIsGguf(config.init)) ggufSources(ggufHeaderRead(config.init), spec as LlamaSpec, buildDeferred(() => withoutRandomInit(() => createModel(spec, config.seed))).namedParameters());
  else if (!initIsQuantized(config.init)) initFromFile(config.init, withoutRandomInit(() => createModel(spec, config.seed)), spec);
}

/**
 * The command line's inputs, checked at once: a dataset read from a file the flags do not name, and
 * a model that cannot read the dataset's samples (naming what would fit: config/compatibility.ts).
 */
export function checkRunInputs(config: Pick<TrainConfig, 'model' | 'dataset' | 'dataFile'>): void {
  const problems: ConfigError[] = [];
  const unreadable = dataFileProblem({ name: config.dataset, dataFile: config.dataFile });
  if (unreadable) problems.push(new ConfigError(unreadable.file, '', unreadable.problem));
  const why = modelDatasetMismatch(config.model, config.dataset);
  if (why) problems.push(new ConfigError('command line', '--model, --dataset', why));
  throwProblems(problems);
}
