/**
 * `--save DIR`: the trained model as a Hugging Face folder (nn/interchange/hf_folder.ts), with the
 * tokenizer the run used beside it, so transformers loads model and tokenizer together: the --init
 * folder's tokenizer files and token ids, else those of a --tokenizer tokenizer.json (its folder's
 * files, its bos / eos), else the bos / eos of a named tokenizer (gpt2's <|endoftext|>).
 */
import { dirname } from 'node:path';
import { tokenizerFile } from '../../data/hf_tokenizer.js';
import { isNamedTokenizer, makeTokenizer } from '../../data/tokenizer.js';
import type { HfTokenIds } from '../../nn/interchange/hf_config.js';
import { type SaveFolderOptions, saveFolder } from '../../nn/interchange/hf_folder.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import type { TrainConfig } from './config.js';
import { initIsFolder } from './init_source.js';

/** Where the saved folder's tokenizer files and token ids come from, for this run. */
export function tokenizerSources(config: Pick<TrainConfig, 'init' | 'dataset' | 'tokenizer'>): Pick<SaveFolderOptions, 'tokenizerFrom' | 'tokens'> {
  if (initIsFolder(config.init)) return { tokenizerFrom: config.init };
  if (config.dataset !== 'text') return {};
  const name = config.tokenizer ?? 'gpt2';
  const t = makeTokenizer(name);
  const tokens: HfTokenIds = {};
  if (t.bos !== null) tokens.bos = t.bos;
  if (t.eos !== null) tokens.eos = t.eos;
  if (isNamedTokenizer(name)) return { tokens };
  // The folder of the tokenizer.json the run read (an npm:PACKAGE/PATH resolved as the tokenizer was).
  return { tokenizerFrom: dirname(tokenizerFile(name)), tokens };
}

/** Writes the run's model into `dir` as a Hugging Face folder; the files written. */
export function saveRunFolder(dir: string, model: Module, spec: ModelSpec, config: Pick<TrainConfig, 'init' | 'dataset' | 'tokenizer'>, opts: Omit<SaveFolderOptions, 'tokenizerFrom' | 'tokens'>): string[] {
  return saveFolder(dir, model, spec, { ...opts, ...tokenizerSources(config) });
}
