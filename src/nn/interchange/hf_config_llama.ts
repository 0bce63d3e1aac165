/**
 * The Llama family's config.json (LlamaConfig, Qwen2Config, Qwen3Config, MixtralConfig,
 * MistralConfig) ⇄ LlamaSpec. Mistral is Llama's math (no biases, SwiGLU, GQA) under its own name,
 * read where its sliding window covers the whole context.
 *
 * How the variants differ there: Qwen2 always has q/k/v biases (no attention_bias key) and none on
 * o_proj; Llama's and Qwen3's `attention_bias` puts biases on o_proj too, which our model does not
 * have, so true is refused; Qwen3 has per-head q/k norms. head_dim defaults to hidden_size /
 * num_attention_heads, num_key_value_heads to the heads. Rotary settings live under
 * `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling` (older files); both are read,
 * and the older spelling is written, which every transformers version reads.
 */
import type { LlamaSpec, ModelSpec, RopeScaling } from '../models/index.js';
import type { MoeSpec } from '../layers/sparse_moe.js';
import { checkLlamaSpec } from '../models/index.js';
import { type ConfigReader, type HfConfig, type HfFamily } from './hf_config_reader.js';

const ARCHITECTURES: Record<LlamaSpec['modelType'], string> = {
  llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', mixtral: 'MixtralForCausalLM', mistral: 'MistralForCausalLM',
};

/**
 * Mistral's and Mixtral's sliding window: none (null, Mistral 7B v0.2 on), or one at least the
 * model's positions, is attention over the whole window, which is what smolcluster computes.
 */
function wholeWindow(c: ConfigReader, context: number): void {
  const window = c.json.sliding_window;
  if (window === null || window === undefined || (typeof window === 'number' && window >= context)) return;
  throw c.error('sliding_window', `${JSON.stringify(window)} is not supported: smolcluster's attention sees the whole window (null, or at least max_position_embeddings ${context})`);
}

/**
 * Mixtral's experts. transformers adds the load-balancing loss only with output_router_logits, so
 * without it the coefficient we train with is 0; we write it back with the flag set when it is not.
 */
function expertsOf(c: ConfigReader): MoeSpec {
  c.oneOf('router_jitter_noise', [0], 'smolcluster\'s router adds no noise');
  const coef = c.number('router_aux_loss_coef', 0.001);
  return { experts: c.size('num_local_experts', 8), topK: c.size('num_experts_per_tok', 2), auxLossCoef: c.bool('output_router_logits', false) ? coef : 0 };
}

/** Rotary θ and scaling, from rope_parameters or rope_theta / rope_scaling. */
function rotaryOf(c: ConfigReader): { ropeTheta: number; ropeScaling: RopeScaling | null } {
  const params = c.json.rope_parameters as Record<string, unknown> | null | undefined;
  const legacy = c.json.rope_scaling as Record<string, unknown> | null | undefined;
  const key = params ? 'rope_parameters' : 'rope_scaling';
  const scaling = params ?? legacy ?? null;
  if (scaling !== null && (typeof scaling !== 'object' || Array.isArray(scaling))) throw c.error(key, `must be an object, got ${JSON.stringify(scaling)}`);
  const theta = scaling?.rope_theta ?? c.json.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) throw c.error(params ? 'rope_parameters.rope_theta' : 'rope_theta', `must be a positive number, got ${JSON.stringify(theta)}`);
  const type = scaling?.rope_type ?? scaling?.type ?? 'default';
  if (type === 'default') return { ropeTheta: theta, ropeScaling: null };
  if (type !== 'llama3') throw c.error(`${key}.rope_type`, `${JSON.stringify(type)} is not supported: smolcluster's rotary is the default or llama3 scaling`);
  const num = (field: string): number => {
    const v = scaling![field];
    if (typeof v !== 'number' || !(v > 0)) throw c.error(`${key}.${field}`, `must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    ropeTheta: theta,
    ropeScaling: {
      type: 'llama3', factor: num('factor'), lowFreqFactor: num('low_freq_factor'), highFreqFactor: num('high_freq_factor'),
      originalContext: num('original_max_position_embeddings'),
    },
  };
}

function toSpec(c: ConfigReader): LlamaSpec {
  const modelType = c.json.model_type as LlamaSpec['modelType'];
  c.oneOf('hidden_act', ['silu'], 'the Llama family\'s MLP is SwiGLU (silu)');
  c.oneOf('mlp_bias', [false], 'smolcluster\'s Llama MLP has no biases');
  c.oneOf('use_sliding_window', [false], 'smolcluster\'s attention sees the whole window');
  if (modelType !== 'qwen2') c.oneOf('attention_bias', [false], 'attention_bias puts a bias on o_proj too, which smolcluster\'s Llama does not have');
  if (modelType === 'mistral' || modelType === 'mixtral') wholeWindow(c, c.size('max_position_embeddings', 2048));
  if (Array.isArray(c.json.layer_types) && c.json.layer_types.some((t) => t !== 'full_attention')) {
    throw c.error('layer_types', `${JSON.stringify(c.json.layer_types)} is not supported: every layer must be full_attention`);
  }
  const width = c.size('hidden_size');
  const heads = c.size('num_attention_heads');
  if (!c.has('head_dim') && width % heads !== 0) throw c.error('num_attention_heads', `hidden_size ${width} is not divisible by ${heads} heads (and there is no head_dim)`);
  const spec: LlamaSpec = {
    type: 'llama', modelType, vocabSize: c.size('vocab_size'), context: c.size('max_position_embeddings', 2048),
    layers: c.size('num_hidden_layers'), width, intermediate: c.size('intermediate_size'), heads,
    kvHeads: c.size('num_key_value_heads', heads), headDim: c.size('head_dim', width / heads),
    ...rotaryOf(c),
    rmsEps: c.number('rms_norm_eps', 1e-6), tieEmbeddings: c.bool('tie_word_embeddings', false),
    qkvBias: modelType === 'qwen2', qkNorm: modelType === 'qwen3', dropout: c.number('attention_dropout', 0),
    ...(modelType === 'mixtral' ? { moe: expertsOf(c) } : {}),
  };
  try {
    checkLlamaSpec(spec);
  } catch (e) {
    throw c.error('', (e as Error).message);
  }
  return spec;
}

function toConfig(s: ModelSpec): HfConfig {
  const spec = s as LlamaSpec;
  if (spec.qkvBias !== (spec.modelType === 'qwen2')) throw new Error(`a ${spec.modelType} model ${spec.qkvBias ? 'with' : 'without'} q/k/v biases has no Hugging Face config (only qwen2 has them)`);
  if (spec.qkNorm !== (spec.modelType === 'qwen3')) throw new Error(`a ${spec.modelType} model ${spec.qkNorm ? 'with' : 'without'} q/k norms has no Hugging Face config (only qwen3 has them)`);
  const r = spec.ropeScaling;
  return {
    architectures: [ARCHITECTURES[spec.modelType]], model_type: spec.modelType, vocab_size: spec.vocabSize,
    max_position_embeddings: spec.context, num_hidden_layers: spec.layers, hidden_size: spec.width,
    intermediate_size: spec.intermediate, num_attention_heads: spec.heads, num_key_value_heads: spec.kvHeads, head_dim: spec.headDim,
    hidden_act: 'silu', rms_norm_eps: spec.rmsEps, tie_word_embeddings: spec.tieEmbeddings,
    ...(spec.modelType === 'qwen2' || spec.modelType === 'mixtral' ? {} : { attention_bias: false }), attention_dropout: spec.dropout,
    ...(spec.modelType === 'mixtral' ? {} : { mlp_bias: false }),
    // No router_jitter_noise (its default 0.0): a JSON 0 is an int, which transformers' strict config refuses for a float field.
    ...(spec.modelType === 'mistral' ? { sliding_window: null } : {}),
    ...(spec.moe ? {
      num_local_experts: spec.moe.experts, num_experts_per_tok: spec.moe.topK, sliding_window: null,
      output_router_logits: spec.moe.auxLossCoef > 0, ...(spec.moe.auxLossCoef > 0 ? { router_aux_loss_coef: spec.moe.auxLossCoef } : {}),
    } : {}),
    rope_theta: spec.ropeTheta,
    rope_scaling: r && { rope_type: 'llama3', factor: r.factor, low_freq_factor: r.lowFreqFactor, high_freq_factor: r.highFreqFactor, original_max_position_embeddings: r.originalContext },
  };
}

export const LLAMA_FAMILY: HfFamily = {
  modelTypes: ['llama', 'qwen2', 'qwen3', 'mixtral', 'mistral'],
  architectures: ['LlamaForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'MixtralForCausalLM', 'MistralForCausalLM'],
  toSpec,
  toConfig,
};
