/**
 * `--init DIR` with a Hugging Face model folder, or `--init FILE.gguf` with a llama.cpp file: the
 * model's family and shape come from its config.json (the file's metadata), not from --model and
 * the size flags. Those flags may restate the model's shape but never contradict it (refused by
 * name); --context is the training window, at most the model's positions; the dataset's
 * vocabulary must fit in the model's. A GGUF file's header is read at the command's start
 * (readInitGguf), since only synchronous code asks for its spec afterwards.
 */
import { existsSync } from 'node:fs';
import { type Dataset, isTokenTask } from '../../data/dataset.js';
import { ggufHeaderRead, isGgufFile, readGgufHeader } from '../../nn/interchange/gguf.js';
import { loadGgufModel, specFromGguf } from '../../nn/interchange/gguf_llama.js';
import { readHfConfig, specFromFolder } from '../../nn/interchange/hf_folder.js';
import { folderWeights, isFolder } from '../../nn/interchange/hf_weights.js';
import { type MlxQuantization, loadMlxFolder, mlxQuantizationOf } from '../../nn/interchange/mlx_folder.js';
import { BERT_MODELS, GPT2_MODELS, LLAMA_MODELS, LLAMA_SIZES, type ModelSpec, type ModelType, createModel, isTokenModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { ConfigError } from '../../util/errors.js';
import type { TrainConfig } from './config.js';

/** True when --init names a folder (a Hugging Face model folder, checked when read). */
export function initIsFolder(init: string | undefined): init is string {
  return init !== undefined && isFolder(init);
}

/** True when --init names a GGUF file (by its magic bytes). */
export function initIsGguf(init: string | undefined): init is string {
  return init !== undefined && isGgufFile(init);
}

/** Reads --init's GGUF header once, at a command's start (nothing to do for another --init). */
export async function readInitGguf(init: string | undefined): Promise<void> {
  if (initIsGguf(init)) await readGgufHeader(init);
}

/** True when --init holds quantized matrices: a GGUF file (even an F16 one: it is read by the same path), an MLX quantized folder. */
export function initIsQuantized(init: string | undefined): init is string {
  return initIsGguf(init) || initMlxQuantization(init) !== null;
}

/** The quantization of an MLX quantized folder in --init (config.json's), or null for anything else. */
export function initMlxQuantization(init: string | undefined): MlxQuantization | null {
  return initIsFolder(init) ? mlxQuantizationOf(readHfConfig(init), `${init}/config.json`) : null;
}

/** The model --init describes, and where that description is (named in refusals); null for a model file. */
function initModel(init: string | undefined): { spec: ModelSpec; from: string; what: string } | null {
  if (initIsFolder(init)) return { spec: specFromFolder(init), from: `${init}/config.json`, what: 'config.json' };
  if (initIsGguf(init)) return { spec: specFromGguf(ggufHeaderRead(init)), from: `${init}'s metadata`, what: 'GGUF metadata' };
  return null;
}

/**
 * The model name a run records for an --init folder (or GGUF file): --model when it names the folder's family
 * (`--model smollm2-135m --init ./SmolLM2-135M`), else the family's name (gpt2, bert) or the Llama
 * preset of the folder's variant and shape (else the variant's first preset). A transformer of
 * another family in --model is refused by name (a non-transformer is --model's default, mlp, left
 * as it was). Without a folder, --model as given.
 */
export function modelForInit(init: string | undefined, model: ModelType): ModelType {
  const described = initModel(init);
  if (!described) return model;
  const { spec, what } = described;
  const family = familyNames(spec);
  if ((family as readonly string[]).includes(model)) return model;
  // --model defaults to mlp: a transformer named there was asked for, and is not what the folder holds.
  if (isTokenModel(model)) {
    throw new ConfigError('command line', '--model', `${model} is not the family of --init ${init}, whose ${what} holds a ${spec.type === 'llama' ? spec.modelType : spec.type} (leave --model out, or name one of ${family.join(', ')})`);
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
 * The spec of an --init folder's (or GGUF file's) model for this run, after checking the flags
 * against it: --layers, --width and --heads must equal the model's when given, --context (the
 * window) must not exceed the model's positions, and the dataset's token ids must be below its
 * vocabulary size.
 */
export function folderSpec(config: Pick<TrainConfig, 'init' | 'layers' | 'width' | 'heads' | 'context' | 'dropout'>, data: Dataset): ModelSpec {
  const described = initModel(config.init);
  if (!described) throw new Error(`--init ${config.init}: not a model folder or GGUF file`);
  const { spec, from, what } = described;
  if (spec.type !== 'gpt2' && spec.type !== 'bert' && spec.type !== 'llama') throw new Error(`${config.init}: not a transformer folder`);
  const refuse = (flag: string, why: string): ConfigError => new ConfigError('command line', flag, `${why} (the model comes from ${from}; leave the flag out)`);
  for (const flag of ['layers', 'width', 'heads'] as const) {
    const given = config[flag];
    if (given !== undefined && given !== spec[flag]) throw refuse(`--${flag}`, `${given} disagrees with --init's ${what}, which has ${spec[flag]}`);
  }
  const window = data.inputShape[0];
  if (config.context !== undefined && config.context > spec.context) {
    throw refuse('--context', `${config.context} exceeds the ${spec.context} positions of the model in --init's ${what}`);
  }
  if (window > spec.context) throw new ConfigError('command line', '--context', `the dataset's ${window}-token windows exceed the ${spec.context} positions of the model in ${from}; pass --context ${spec.context} or less`);
  if (isTokenTask(data) && data.vocabSize > spec.vocabSize) {
    throw new ConfigError('command line', '--tokenizer', `the dataset's tokenizer has ${data.vocabSize} token ids, more than the ${spec.vocabSize} of the model in ${from} (use the model's own tokenizer)`);
  }
  // Dropout is how the run trains, not the model's shape: --dropout overrides config.json's.
  return config.dropout === undefined ? spec : { ...spec, dropout: config.dropout };
}

/** True when --init describes the model itself (a folder's config.json, a GGUF file's metadata), not only its weights. */
export function initDescribesModel(init: string | undefined): init is string {
  return initIsFolder(init) || initIsGguf(init);
}

/**
 * Cheap checks of --init before a run creates its folder: the path exists, and a folder has a
 * config.json we can build that the flags and the dataset agree with, and the weight files its
 * index names. (Names and shapes of the tensors are checked when the model loads them.)
 */
export function checkInitSource(config: Pick<TrainConfig, 'init' | 'layers' | 'width' | 'heads' | 'context' | 'dropout'>, data: Dataset): void {
  const init = config.init;
  if (init === undefined) return;
  checkInitExists(init);
  if (!initDescribesModel(init)) return;
  folderSpec(config, data);
  if (isFolder(init)) folderWeights(init);
}

/**
 * Refuses an --init that names nothing here; a Hugging Face hub id (org/name) is not downloaded: the
 * message says how to get the folder. `train` asks first, before the model or the dataset it is not
 * would be blamed (a typo, a hub id).
 */
export function checkInitExists(init: string | undefined): void {
  if (init === undefined || existsSync(init)) return;
  const hub = /^[\w.-]+\/[\w.-]+$/.test(init) ? `; a Hugging Face hub id is not downloaded: fetch the folder first (huggingface-cli download ${init} --local-dir ${init.split('/')[1]}) and give its path` : '';
  throw new ConfigError('command line', '--init', `"${init}" does not exist${hub}`);
}

/**
 * The model a run starts from. A quantized --init (a GGUF file, an MLX quantized folder) is read
 * here whole, its quantized matrices frozen in their blocks (`read`: nothing left to load); any other
 * --init is built without drawing the values it will overwrite, and read later (initFromFile).
 */
export function initialModel(config: Pick<TrainConfig, 'init' | 'seed'>, spec: ModelSpec): { model: Module; read: boolean } {
  const init = config.init;
  if (initIsGguf(init)) return { model: loadGgufModel(ggufHeaderRead(init), spec as Parameters<typeof loadGgufModel>[1]).model, read: true };
  const mlx = initMlxQuantization(init);
  if (mlx) return { model: loadMlxFolder(init!, spec, mlx), read: true };
  return { model: init ? withoutRandomInit(() => createModel(spec, config.seed)) : createModel(spec, config.seed), read: false };
}
