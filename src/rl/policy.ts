/**
 * GRPO's policy and reference models, built as `train --init` builds a fine-tuning run's model
 * (train/loop/fine_tune.ts): the --model's weights (a Hugging Face folder, or a GGUF file whose
 * quantized base trains LoRA only), LoRA adapters on and the rest frozen when --lora-rank is given,
 * a base held in bf16 or quantized as --lora-base-dtype asks. The reference (β > 0) is the same
 * weights again, frozen: a second copy in memory (TRL switches a PEFT model's adapters off instead).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Tokenizer } from '../data/tokenizer.js';
import type { CausalLm } from '../generate/generate.js';
import { type ChatTemplate } from '../generate/chat_template.js';
import { type CausalLmSpec, describeModel } from '../generate/load_generator.js';
import { resolveModelSource } from '../generate/model_source.js';
import { ggufHeaderRead, isGgufFile } from '../nn/interchange/gguf.js';
import { specFromGguf } from '../nn/interchange/gguf_llama.js';
import { specFromHfConfig } from '../nn/interchange/hf_config.js';
import { readHfConfig } from '../nn/interchange/hf_folder.js';
import { initFromFile } from '../nn/interchange/model_io.js';
import type { ModelSpec } from '../nn/models/index.js';
import type { Module } from '../nn/module.js';
import { type Optimizer, makeOptimizer } from '../nn/optim/index.js';
import { ConfigError } from '../util/errors.js';
import type { TrainConfig } from '../train/run/config.js';
import { finishFineTune, prepareFineTune } from '../train/loop/fine_tune.js';
import { initialModel } from '../train/run/init_source.js';

export type PolicyConfig = Pick<TrainConfig, 'loraRank' | 'loraAlpha' | 'loraDropout' | 'loraTargets' | 'loraBaseDtype' | 'adapter' | 'freeze' | 'mergeLora' | 'seed'>;

export interface Policy {
  model: CausalLm;
  spec: CausalLmSpec;
  tokenizer: Tokenizer;
  eosIds: number[];
  chatTemplate: ChatTemplate | null;
  /** What prepareFineTune did (the LoRA line), or null for full fine-tuning. */
  fineTune: string | null;
}

/** The spec --model describes: a Hugging Face folder's config.json or a GGUF file's header. */
export function policySpec(source: string): ModelSpec {
  if (isGgufFile(source)) return specFromGguf(ggufHeaderRead(source));
  if (existsSync(join(source, 'config.json')) && statSync(source).isDirectory()) return specFromHfConfig(readHfConfig(source), join(source, 'config.json'));
  throw new ConfigError('command line', '--model', `${source}: grpo starts from a Hugging Face model folder (config.json + safetensors) or a GGUF file`);
}

/** The policy: its weights read, adapters on (with --lora-rank), the tokenizer, end ids and chat template --model brings. */
export function loadPolicy(source: string, config: PolicyConfig, tokenizer?: string): Policy {
  const spec = policySpec(source);
  const described = describeModel(source, resolveModelSource(source), spec, { tokenizer });
  const causal = described.spec;
  const { model, read } = initialModel({ init: source, seed: config.seed }, spec);
  const fineTune = prepareFineTune(model, spec, config);
  if (!read) initFromFile(source, model, spec);
  finishFineTune(model, spec, config);
  return { model: model as CausalLm, spec: causal, tokenizer: described.tokenizer, eosIds: described.eosIds, chatTemplate: described.chatTemplate, fineTune };
}

/** The frozen reference (β > 0): the --model's weights, no adapters, in eval mode. */
export function loadReference(source: string, spec: ModelSpec, seed: number): CausalLm {
  const { model, read } = initialModel({ init: source, seed }, spec);
  if (!read) initFromFile(source, model, spec);
  for (const p of model.parameters()) p.requiresGrad = false;
  return model.eval() as CausalLm;
}

/** AdamW over what trains (the adapters under LoRA), as TRL's GRPOConfig optimises: weight decay as given (default 0). */
export function policyOptimizer(model: Module, lr: number, weightDecay: number): Optimizer {
  return makeOptimizer(model.arena(), { name: 'adamw', lr, weightDecay });
}
