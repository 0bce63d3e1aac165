/** Options of parameter-efficient fine-tuning: LoRA adapters (nn/lora/) and freezing parameters by name. */
import { InvalidArgumentError } from 'commander';
import { QUANT_SCHEMES } from '../../nn/quantize_model.js';
import { oneOf, positiveInt, positiveNumber, probability } from './parsers.js';
import { choice, toggle, valued } from './spec.js';

/** --lora-targets q_proj,v_proj: module names, comma-separated. */
function moduleNames(text: string): string[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new InvalidArgumentError('expected module names, comma-separated (e.g. q_proj,v_proj)');
  return names;
}

/** The frozen base's dtype under LoRA: float32, bfloat16, or a quantized scheme (QLoRA: every weight matrix held in its blocks). */
export const LORA_BASE_DTYPES = ['fp32', 'bf16', ...QUANT_SCHEMES] as const;
export type LoraBaseDtype = (typeof LORA_BASE_DTYPES)[number];

export const LORA_OPTIONS = {
  loraRank: valued({ arg: '<r>', help: 'train LoRA adapters of rank r on --lora-targets, everything else frozen (no gradients, no optimizer state, only adapters on the wire; docs/FINETUNE.md)', parse: positiveInt, forward: true, config: true }),
  loraAlpha: valued({ arg: '<a>', help: 'LoRA: the adapters\' update is scaled by a / r (default 2r, i.e. scale 2)', parse: positiveNumber, forward: true, config: true }),
  loraDropout: valued({ arg: '<p>', help: 'LoRA: dropout on the adapters\' input while training (default 0)', parse: probability, forward: true, config: true }),
  loraTargets: valued({ arg: '<names>', help: 'LoRA: the Hugging Face module names to adapt, comma-separated, as PEFT\'s target_modules, or all-linear: every Linear layer but the head (default q_proj,v_proj; gpt2: c_attn)', parse: moduleNames, forward: true, config: true }),
  loraBaseDtype: choice(LORA_BASE_DTYPES, { arg: '<dtype>', help: 'LoRA: hold the adapted layers\' frozen base weights in fp32 (default) or bf16 (half their memory; bf16 matmuls with float32 accumulation), or every weight matrix quantized (QLoRA): nf4, q4_k_m, q5_k_m, q4_0, q8_0, mlx4, mlx8 (docs/FINETUNE.md)', parse: oneOf(LORA_BASE_DTYPES), forward: true, config: true }),
  adapter: valued<string>({ arg: '<dir>', help: 'LoRA: start from this PEFT adapter folder (adapter_config.json + adapter_model.safetensors; its r, alpha and targets unless the --lora flags say otherwise) on the --init model', forward: true, config: true }),
  mergeLora: toggle({ help: 'LoRA: --save DIR writes the base with the adapters merged in (a plain Hugging Face folder) instead of the PEFT adapter folder', forward: true, config: true }),
  freeze: valued<string>({ arg: '<patterns>', help: 'train with these parameters frozen: globs over dotted names (* within a part, ** across parts) or /regex/, comma-separated, e.g. "model.embed_tokens.*,/layers\\.[0-5]\\./"', forward: true, config: true }),
} as const;
