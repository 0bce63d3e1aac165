/**
 * Hugging Face model folders in and out: what `from_pretrained` reads and `save_pretrained` writes.
 *
 *   config.json                      the architecture (hf_config.ts): the model is built from it alone
 *   model.safetensors                the weights, or
 *   model-0000i-of-0000n.safetensors shards listed by model.safetensors.index.json (hf_shards.ts)
 *   tokenizer.json, ...              the tokenizer and generation settings, copied through untouched
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { CheckpointError } from '../checkpoint.js';
import { type ModelSpec, createModel } from '../models/index.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import type { Module } from '../module.js';
import { writeFileAtomic } from '../../util/atomic_file.js';
import { ConfigError } from '../../util/errors.js';
import { type HfConfig, type HfTokenIds, hfConfigFromSpec, hfTokenIds, specFromHfConfig } from './hf_config.js';
import { DEFAULT_SHARD_BYTES, writeShardedSafetensors } from './hf_shards.js';
import { CONFIG_FILE, isFolder } from './hf_weights.js';
import { mlxQuantizationOf } from './mlx_folder.js';
import { type SaveDtype, externalTensors, loadFolderWeights, safetensorsMetadata } from './model_io.js';

/** The files beside the weights that describe the tokenizer and generation, copied as they are. */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'added_tokens.json',
  'vocab.json', 'merges.txt', 'vocab.txt', 'chat_template.jinja',
] as const;

const TORCH_DTYPE: Record<SaveDtype, 'float32' | 'bfloat16' | 'float16'> = { fp32: 'float32', bf16: 'bfloat16', f16: 'float16' };

/**
 * Whether --save writes a Hugging Face folder there: a path ending in a separator, an existing
 * folder, or a name without an extension (`out/smollm2-ft`); `x.safetensors`, `x.smol`, `x.bin`
 * are files.
 */
export function isFolderTarget(path: string): boolean {
  return /[/\\]$/.test(path) || isFolder(path) || !extname(path);
}

/** A folder's config.json, parsed (a missing or malformed one refused naming the file). */
export function readHfConfig(dir: string): HfConfig {
  const file = join(dir, CONFIG_FILE);
  if (!isFolder(dir)) throw new ConfigError(dir, '', 'is not a folder');
  if (!existsSync(file)) throw new ConfigError(file, '', `is missing: a Hugging Face model folder has a config.json describing the model (${dir} holds no model smolcluster can build)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(file, '', `is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(file, '', 'is not a JSON object');
  return json as HfConfig;
}

/** The spec of the model a folder holds, from its config.json alone. */
export function specFromFolder(dir: string): ModelSpec {
  return specFromHfConfig(readHfConfig(dir), join(dir, CONFIG_FILE));
}

/** A model read from a Hugging Face folder. */
export interface PretrainedModel {
  spec: ModelSpec;
  model: Module;
  /** The folder's config.json as it was. */
  config: HfConfig;
  /** Its bos / eos / pad ids (eos may be a list). */
  tokens: HfTokenIds;
  dir: string;
}

/**
 * Builds the model a Hugging Face folder describes (config.json) and loads its weights
 * (model.safetensors or the shards of model.safetensors.index.json, in F32, BF16 or F16, widened
 * to float32). Every tensor the model needs must be there with its shape.
 */
export async function loadPretrained(dir: string): Promise<PretrainedModel> {
  const config = readHfConfig(dir);
  const file = join(dir, CONFIG_FILE);
  const spec = specFromHfConfig(config, file);
  if (mlxQuantizationOf(config, file)) throw new CheckpointError(dir, 'is an MLX quantized folder: generate, chat and serve run it (docs/QUANTIZE.md); training over a quantized base is not built yet');
  // Every parameter is read from the folder (a missing one is refused): nothing to draw first.
  const model = withoutRandomInit(() => createModel(spec, 0));
  loadFolderWeights(dir, model, spec);
  return { spec, model, config, tokens: hfTokenIds(config, file), dir };
}

export interface SaveFolderOptions {
  /** The dtype the weights are written in (default fp32; config.json's torch_dtype says it). */
  dtype?: SaveDtype;
  /** Shard above this many bytes (default 5 GB, transformers' max_shard_size). */
  shardBytes?: number;
  /** A Hugging Face folder (the --init one) whose tokenizer files are copied, and whose token ids are kept. */
  tokenizerFrom?: string;
  /** bos / eos / pad ids for config.json (default: those of `tokenizerFrom`'s config.json). */
  tokens?: HfTokenIds;
  /** Extra __metadata__ entries of the safetensors files (steps, seed). */
  meta?: Record<string, unknown>;
}

/**
 * Writes the model as a Hugging Face folder that `AutoModelForCausalLM.from_pretrained` (GPT-2,
 * Llama family) or `BertForMaskedLM.from_pretrained` loads: config.json, the weights (sharded
 * above `shardBytes`) and the tokenizer files of `tokenizerFrom`. Returns the files written.
 */
export function saveFolder(dir: string, model: Module, spec: ModelSpec, opts: SaveFolderOptions = {}): string[] {
  const dtype = opts.dtype ?? 'fp32';
  const source = opts.tokenizerFrom !== undefined && isFolder(opts.tokenizerFrom) ? opts.tokenizerFrom : undefined;
  const tokens = opts.tokens ?? (source && existsSync(join(source, CONFIG_FILE)) ? hfTokenIds(readHfConfig(source), join(source, CONFIG_FILE)) : {});
  const config = hfConfigFromSpec(spec, { dtype: TORCH_DTYPE[dtype], tokens });
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new CheckpointError(dir, `cannot create the folder: ${(e as Error).message}`);
  }
  const written = writeShardedSafetensors(dir, externalTensors(model, spec, dtype), safetensorsMetadata(spec, opts.meta), opts.shardBytes ?? DEFAULT_SHARD_BYTES);
  writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  written.push(CONFIG_FILE);
  // Saved into the --init folder itself: its tokenizer files are already there.
  for (const name of source && resolve(source) !== resolve(dir) ? TOKENIZER_FILES : []) {
    const from = join(source!, name);
    if (!existsSync(from)) continue;
    copyFileSync(from, join(dir, name));
    written.push(name);
  }
  return written;
}
