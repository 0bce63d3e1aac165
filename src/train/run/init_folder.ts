/**
 * `--init DIR` with a Hugging Face model folder: the model's family and shape come from its
 * config.json, not from --model and the size flags. Those flags may restate the folder's shape but
 * never contradict it (refused by name); --context is the training window, at most the model's
 * positions; the dataset's vocabulary must fit in the model's.
 */
import { existsSync } from 'node:fs';
import { type Dataset, isTokenTask } from '../../data/dataset.js';
import { specFromFolder } from '../../nn/interchange/hf_folder.js';
import { folderWeights, isFolder } from '../../nn/interchange/hf_weights.js';
import { BERT_MODELS, GPT2_MODELS, LLAMA_MODELS, LLAMA_SIZES, type ModelSpec, type ModelType, isTokenModel } from '../../nn/models/index.js';
import { ConfigError } from '../../util/errors.js';
import type { TrainConfig } from './config.js';

/** True when --init names a folder (a Hugging Face model folder, checked when read). */
export function initIsFolder(init: string | undefined): init is string {
  return init !== undefined && isFolder(init);
}

/**
 * The model name a run records for an --init folder: --model when it names the folder's family
 * (`--model smollm2-135m --init ./SmolLM2-135M`), else the family's name (gpt2, bert) or the Llama
 * preset of the folder's variant and shape (else the variant's first preset). A transformer of
 * another family in --model is refused by name (a non-transformer is --model's default, mlp, left
 * as it was). Without a folder, --model as given.
 */
export function modelForInit(init: string | undefined, model: ModelType): ModelType {
  if (!initIsFolder(init)) return model;
  const spec = specFromFolder(init);
  const family = familyNames(spec);
  if ((family as readonly string[]).includes(model)) return model;
  // --model defaults to mlp: a transformer named there was asked for, and is not what the folder holds.
  if (isTokenModel(model)) {
    throw new ConfigError('command line', '--model', `${model} is not the family of --init ${init}, whose config.json holds a ${spec.type === 'llama' ? spec.modelType : spec.type} (leave --model out, or name one of ${family.join(', ')})`);
  }
  if (spec.type !== 'llama') return family[0];
  const same = LLAMA_MODELS.filter((n) => LLAMA_SIZES[n].modelType === spec.modelType);
  const shaped = same.find((n) => ['layers', 'width', 'heads', 'kvHeads'].every((k) => LLAMA_SIZES[n][k as 'layers'] === spec[k as 'layers']));
  return shaped ?? same[0] ?? LLAMA_MODELS[0];
}

function familyNames(spec: ModelSpec): readonly ModelType[] {
  switch (spec.type) {
    case 'gpt2': return GPT2_MODELS;
    case 'bert': return BERT_MODELS;
    case 'llama': return LLAMA_MODELS;
    default: return [];
  }
}

/**
 * The spec of an --init folder's model for this run, after checking the flags against it: --layers,
 * --width and --heads must equal config.json's when given, --context (the window) must not exceed
 * the model's positions, and the dataset's token ids must be below its vocabulary size.
 */
export function folderSpec(config: Pick<TrainConfig, 'init' | 'layers' | 'width' | 'heads' | 'context' | 'dropout'>, data: Dataset): ModelSpec {
  const dir = config.init!;
  const spec = specFromFolder(dir);
  if (spec.type !== 'gpt2' && spec.type !== 'bert' && spec.type !== 'llama') throw new Error(`${dir}: not a transformer folder`);
  const refuse = (flag: string, why: string): ConfigError => new ConfigError('command line', flag, `${why} (the model comes from ${dir}/config.json; leave the flag out)`);
  for (const flag of ['layers', 'width', 'heads'] as const) {
    const given = config[flag];
    if (given !== undefined && given !== spec[flag]) throw refuse(`--${flag}`, `${given} disagrees with --init's config.json, which has ${spec[flag]}`);
  }
  const window = data.inputShape[0];
  if (config.context !== undefined && config.context > spec.context) {
    throw refuse('--context', `${config.context} exceeds the ${spec.context} positions of the model in --init's config.json`);
  }
  if (window > spec.context) throw new ConfigError('command line', '--context', `the dataset's ${window}-token windows exceed the ${spec.context} positions of the model in ${dir}/config.json; pass --context ${spec.context} or less`);
  if (isTokenTask(data) && data.vocabSize > spec.vocabSize) {
    throw new ConfigError('command line', '--tokenizer', `the dataset's tokenizer has ${data.vocabSize} token ids, more than the ${spec.vocabSize} of the model in ${dir}/config.json (use the model's own tokenizer)`);
  }
  // Dropout is how the run trains, not the model's shape: --dropout overrides config.json's.
  return config.dropout === undefined ? spec : { ...spec, dropout: config.dropout };
}

/**
 * Cheap checks of --init before a run creates its folder: the path exists, and a folder has a
 * config.json we can build that the flags and the dataset agree with, and the weight files its
 * index names. (Names and shapes of the tensors are checked when the model loads them.)
 */
export function checkInitSource(config: Pick<TrainConfig, 'init' | 'layers' | 'width' | 'heads' | 'context' | 'dropout'>, data: Dataset): void {
  const init = config.init;
  if (init === undefined) return;
  if (!existsSync(init)) throw new ConfigError('command line', '--init', `"${init}" does not exist`);
  if (!isFolder(init)) return;
  folderSpec(config, data);
  folderWeights(init);
}
