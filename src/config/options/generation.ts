/**
 * Options of the commands that talk to a trained model (`generate`, `chat`): what to load, how to
 * sample. The sampling options are those of transformers' `generate` and llama.cpp, with the same
 * meanings and "off" values (docs/GENERATE.md).
 */
import { InvalidArgumentError } from 'commander';
import { DEVICE_CHOICES, QUANT_SCHEMES } from './choices.js';
import { appended, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from './parsers.js';
import { choice, toggle, valued } from './spec.js';
import { STAGE_OPTIONS } from './stages.js';


/** A probability in (0, 1] (--top-p). */
function openUnit(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError('expected a number in (0, 1].');
  return n;
}

/** A probability in [0, 1] (--min-p). */
function closedUnit(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a number in [0, 1].');
  return n;
}

export const GENERATION_PRECISIONS = ['fp32', 'bf16'] as const;

/** Where the model comes from and where it runs. */
export const MODEL_SOURCE_OPTIONS = {
  model: valued<string>({ arg: '<src>', help: 'the model: a Hugging Face model folder, a model file saved by smolcluster (--save), a run\'s folder (experiments/NAME: its newest checkpoint or saved model; a LoRA run\'s adapters on its --init), or a PEFT adapter folder (on its base_model_name_or_path)', forward: false }),
  tokenizer: valued<string>({ arg: '<name|path>', help: 'the tokenizer (default: the folder\'s tokenizer.json, the one the run trained with, or gpt2 / bytes as the vocabulary size implies)', forward: false }),
  adapter: valued<string>({ arg: '<dir>', help: 'a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) merged into the model\'s weights once, at load', forward: false }),
  device: choice(DEVICE_CHOICES, { arg: '<device>', help: 'where the model runs: cpu (default), gpu (WebGPU) or auto', parse: oneOf(DEVICE_CHOICES), forward: false }),
  quantize: choice(QUANT_SCHEMES, { arg: '<scheme>', help: 'hold the weight matrices quantized, as llama.cpp / mlx-lm would: q8_0, q4_0, q4_k_m, q5_k_m (llama.cpp\'s mixes), mlx4, mlx8, nf4 (QLoRA\'s; docs/QUANTIZE.md)', parse: oneOf(QUANT_SCHEMES), forward: false }),
  precision: choice(GENERATION_PRECISIONS, { arg: '<name>', help: 'fp32 (default) or bf16 (matmuls and attention in bfloat16)', parse: oneOf(GENERATION_PRECISIONS), forward: false }),
  threads: valued({ arg: '<n>', help: 'compute threads (default: SMOLCLUSTER_THREADS, else every core)', parse: positiveInt, forward: false }),
} as const;

/** How each token is chosen and when generation ends. */
export const SAMPLING_OPTIONS = {
  maxNewTokens: valued({ arg: '<n>', help: 'the most tokens to generate (default 128; never past the model\'s positions)', parse: nonNegativeInt, forward: false }),
  temperature: valued({ arg: '<t>', help: 'sampling temperature; 0 picks the most likely token (greedy, the default)', parse: nonNegativeNumber, forward: false }),
  topK: valued({ arg: '<k>', help: 'sample among the k most likely tokens (0: off, the default)', parse: nonNegativeInt, forward: false }),
  topP: valued({ arg: '<p>', help: 'sample among the most likely tokens whose probabilities sum to p (1: off, the default)', parse: openUnit, forward: false }),
  minP: valued({ arg: '<p>', help: 'drop tokens less likely than p × the most likely one (0: off, the default)', parse: closedUnit, forward: false }),
  repetitionPenalty: valued({ arg: '<r>', help: 'divide the logits of tokens already seen by r (1: off, the default; 1.1 to 1.3 curbs loops)', parse: positiveNumber, forward: false }),
  seed: valued({ arg: '<n>', help: 'the sampling seed (default 0: the same options give the same text)', parse: nonNegativeInt, forward: false }),
  stop: valued({ arg: '<text>', help: 'end generation where this text appears (repeatable; the text is not printed)', parse: appended, repeatable: true, forward: false }),
} as const;

/** `train --sample-every N`: rank 0 shows what a text model writes as it trains (train/loop/samples.ts). */
export const TRAINING_SAMPLE_OPTIONS = {
  sampleEvery: valued({ arg: '<steps>', help: 'text models: every N steps rank 0 generates a short sample after --sample-prompt, prints it and writes it to metrics.jsonl (the dashboard shows it; 0: never, the default)', parse: nonNegativeInt, forward: true, config: true }),
  samplePrompt: valued<string>({ arg: '<text>', help: 'what the samples continue (default: none, the start of a document)', forward: true, config: true }),
  sampleTemperature: valued({ arg: '<t>', help: 'the samples\' temperature (default 0: greedy; a seed from --seed and the step)', parse: nonNegativeNumber, forward: true, config: true }),
  sampleTokens: valued({ arg: '<n>', help: 'tokens per sample (default 32)', parse: positiveInt, forward: true, config: true }),
} as const;

/** `smolcluster generate`. */
export const GENERATE_OPTIONS = {
  ...MODEL_SOURCE_OPTIONS,
  prompt: valued<string>({ arg: '<text>', help: 'the text to continue (- reads it from stdin)', forward: false }),
  ...SAMPLING_OPTIONS,
  ...STAGE_OPTIONS,
} as const;

/** `smolcluster chat`. */
export const CHAT_OPTIONS = {
  ...MODEL_SOURCE_OPTIONS,
  system: valued<string>({ arg: '<text>', help: 'the system message that opens the conversation', forward: false }),
  // Commander reads --no-template as `template: false` (its negated form of a `template` option).
  noTemplate: toggle({ help: 'no chat template: the conversation continues as plain text, one "role: text" line per turn', forward: false }),
  ...SAMPLING_OPTIONS,
} as const;
