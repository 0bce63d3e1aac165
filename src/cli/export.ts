/**
 * `smolcluster export --model SRC --out OUT`: a model we load, written for other tools.
 *   OUT.gguf  a GGUF file llama.cpp and Ollama load (nn/interchange/gguf_export.ts), its matrices
 *             float32 or in the --quantize scheme's formats, with the model's tokenizer;
 *   OUT/      a Hugging Face folder (float32, or --dtype bf16 / f16) that transformers loads: a
 *             quantized model (a GGUF file) dequantized as gguf-py dequantizes, its tokenizer
 *             written as tokenizer.json and tokenizer_config.json.
 * `--adapter DIR` merges a PEFT adapter into what is written (a GGUF file: one weight at a time, so
 * an 8B model's merge needs the memory of its largest matrix, not of a float copy).
 * The Llama family (llama, qwen2, qwen3); see docs/QUANTIZE.md.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { ggufTokenizerJson } from '../data/gguf_tokenizer.js';
import { tokenizerFile } from '../data/hf_tokenizer.js';
import { loadGenerator } from '../generate/load_generator.js';
import { exportGguf } from '../nn/interchange/gguf_export.js';
import { isGgufFile, readGgufHeader } from '../nn/interchange/gguf.js';
import { saveFolder } from '../nn/interchange/hf_folder.js';
import type { Module } from '../nn/module.js';
import type { LlamaSpec } from '../nn/models/llama.js';
import { dequantize } from '../tensor/ops/quant.js';
import { isQuantType } from '../tensor/quant/formats.js';
import { ConfigError } from '../util/errors.js';
import { type QuantScheme } from '../config/options/choices.js';
import { GGUF_SCHEMES, type GgufScheme } from '../nn/quantize_model.js';
import { loraLayers, mergeLora } from '../nn/lora/index.js';
import { describeMergeKept } from '../nn/lora/merge_report.js';
import { loraMergedValues } from '../nn/lora/merged_values.js';

interface ExportFlags { model?: string; out?: string; adapter?: string; quantize?: QuantScheme; dtype: 'fp32' | 'bf16' | 'f16' }

export function exportCommand(): Command {
  return new Command('export')
    .description('write a model for other tools: OUT.gguf for llama.cpp / Ollama, or a Hugging Face folder (docs/QUANTIZE.md)')
    .option('--model <src>', 'the model: a Hugging Face folder, a GGUF file, a model file saved by smolcluster, a run\'s folder (a LoRA run\'s adapters merged into its --init), or a PEFT adapter folder')
    .option('--out <path>', 'OUT.gguf, or a folder for a Hugging Face model')
    .option('--adapter <dir>', 'a PEFT LoRA adapter folder merged into the weights as they are written (over a GGUF file: its blocks dequantized, the merge requantized by --quantize, one weight at a time)')
    .addOption(new Option('--quantize <scheme>', 'GGUF only: the matrices\' formats (q8_0, q4_0, q4_k_m, q5_k_m: llama.cpp\'s mixes)').choices(GGUF_SCHEMES))
    .addOption(new Option('--dtype <dtype>', 'a folder\'s weights: fp32, bf16 or f16').choices(['fp32', 'bf16', 'f16']).default('fp32'))
    .action(async (f: ExportFlags) => {
      if (f.model === undefined) throw new ConfigError('command line', '--model', 'export needs --model SRC');
      if (f.out === undefined) throw new ConfigError('command line', '--out', 'export needs --out OUT.gguf or --out FOLDER');
      // Over a GGUF file the adapter loads unmerged; each weight is merged as it is written (below).
      const g = await loadGenerator(f.model, f.adapter !== undefined ? { adapter: f.adapter } : {});
      if (g.spec.type !== 'llama') throw new ConfigError('command line', '--model', `${f.model} holds a ${g.spec.type} model; export writes the Llama family`);
      const model = g.model as unknown as Module;
      // A LoRA source's adapters lie beside their base: the base is the file whose metadata may serve.
      const file = g.base ?? g.weights;
      const fromGguf = isGgufFile(file) ? (await readGgufHeader(file)).metadata : null;
      if (f.out.endsWith('.gguf')) {
        if (!fromGguf && !g.tokenizer.name.endsWith('.json')) {
          throw new ConfigError('command line', '--model', `${f.model}'s tokenizer is ${g.tokenizer.name}; a GGUF file is written with a byte-level BPE tokenizer.json (pass --model a folder that has one)`);
        }
        const tokenizer = fromGguf ? { gguf: fromGguf } : { json: tokenizerFile(g.tokenizer.name) };
        const kept = f.adapter !== undefined ? await describeMergeKept(model, f.quantize as GgufScheme | undefined) : null;
        if (kept) process.stderr.write(`smolcluster: --adapter: ${kept}\n`);
        await exportGguf(f.out, model, g.spec, { quantize: f.quantize, tokenizer, merged: loraMergedValues(model) });
      } else {
        if (f.quantize !== undefined) throw new ConfigError('command line', '--quantize', 'applies to a GGUF file (--out X.gguf); a Hugging Face folder holds float weights');
        const plain = loraLayers(model).length > 0 ? await mergeLora(model, g.spec) : model;
        for (const [, p] of plain.namedParameters()) if (isQuantType(p.dtype)) p.holdFrozen(dequantize(p).storage);
        saveFolder(f.out, plain, g.spec as LlamaSpec, { dtype: f.dtype, tokenizerFrom: fromGguf ? undefined : folderOf(g.tokenizer.name) });
        if (fromGguf) writeGgufTokenizer(f.out, file, fromGguf, g);
      }
      process.stderr.write(`smolcluster: wrote ${f.out}\n`);
    });
}

/** The folder a tokenizer.json lives in, for saveFolder to copy its files from (none for a named tokenizer). */
function folderOf(tokenizer: string): string | undefined {
  return tokenizer.endsWith('tokenizer.json') ? join(tokenizer, '..') : undefined;
}

/** A GGUF file's tokenizer as the folder's tokenizer.json and tokenizer_config.json. */
function writeGgufTokenizer(dir: string, path: string, meta: Readonly<Record<string, unknown>>, g: { tokenizer: { eosText: string | null } }): void {
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(ggufTokenizerJson(path, meta)));
  const config = { tokenizer_class: 'PreTrainedTokenizerFast', eos_token: g.tokenizer.eosText, chat_template: meta['tokenizer.chat_template'] };
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
