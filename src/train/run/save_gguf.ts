/**
 * `--save X.gguf`: the trained model (with --merge-lora, the base with the adapters merged in, one
 * weight at a time) as a GGUF file that llama.cpp, Ollama and `smolcluster serve` load, its matrices float32 or in
 * `--save-quantize`'s formats (q8_0, q4_0, q4_k_m, q5_k_m: nn/interchange/gguf_export.ts), with the
 * tokenizer the run used: a --tokenizer tokenizer.json, else a GGUF --init's own metadata, else the
 * --init folder's tokenizer.json. The Llama family only, as `export` writes it.
 */
import { tokenizerFile } from '../../data/hf_tokenizer.js';
import { isNamedTokenizer } from '../../data/tokenizer.js';
import { type GgufExportOptions, exportGguf } from '../../nn/interchange/gguf_export.js';
import { ggufHeaderRead } from '../../nn/interchange/gguf.js';
import type { LlamaSpec, ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { loraMergedValues } from '../../nn/lora/merged_values.js';
import type { GgufScheme } from '../../nn/quantize_model.js';
import { ConfigError } from '../../util/errors.js';
import type { TrainConfig } from './config.js';
import { initIsFolder, initIsGguf } from './init_source.js';

type SaveConfig = Pick<TrainConfig, 'model' | 'init' | 'tokenizer'>;
/** What --save-quantize takes: the schemes GGUF holds. */
export type { GgufScheme };

export const isGgufTarget = (save: string): boolean => save.toLowerCase().endsWith('.gguf');

/** Where the file's tokenizer comes from; refused (before training) where the run has none GGUF can hold. */
export function ggufTokenizerSource(save: string, config: SaveConfig): GgufExportOptions['tokenizer'] {
  if (config.tokenizer !== undefined && !isNamedTokenizer(config.tokenizer) && !initIsGgufPath(config, config.tokenizer)) return { json: tokenizerFile(config.tokenizer) };
  if (initIsGguf(config.init) && (config.tokenizer === undefined || initIsGgufPath(config, config.tokenizer))) return { gguf: ggufHeaderRead(config.init).metadata };
  if (config.tokenizer === undefined && initIsFolder(config.init)) return { json: tokenizerFile(config.init) };
  const name = config.tokenizer ?? 'gpt2';
  throw new ConfigError('command line', '--save', `${save}: a GGUF file carries its tokenizer as a tokenizer.json's vocabulary and merges, and this run's is the named ${name} (pass --tokenizer a tokenizer.json, or --init a model folder or GGUF file)`);
}

function initIsGgufPath(config: SaveConfig, tokenizer: string): boolean {
  return initIsGguf(config.init) && tokenizer === config.init;
}

/** Refuses, before training, a GGUF target the run cannot write: another family, or no tokenizer for it. */
export function checkGgufTarget(save: string, config: SaveConfig, isLlama: boolean): void {
  if (!isLlama) throw new ConfigError('command line', '--save', `${save}: GGUF holds the Llama family (llama, qwen2, qwen3), not a ${config.model ?? 'mlp'}`);
  ggufTokenizerSource(save, config);
}

/** Writes the model to `path` as GGUF; `merge`: its LoRA layers merged, one weight at a time (nn/lora/merged_values.ts). */
export async function saveGgufModel(path: string, model: Module, spec: ModelSpec, config: SaveConfig, quantize: GgufScheme | undefined, merge: boolean): Promise<void> {
  if (spec.type !== 'llama') throw new ConfigError('command line', '--save', `${path}: GGUF holds the Llama family, not a ${spec.type} model`);
  await exportGguf(path, model, spec as LlamaSpec, { tokenizer: ggufTokenizerSource(path, config), ...(quantize ? { quantize } : {}), ...(merge ? { merged: loraMergedValues(model) } : {}) });
}
