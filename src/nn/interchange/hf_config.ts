/**
 * A Hugging Face config.json ⇄ our model spec, for the families we build: GPT-2 (GPT2LMHeadModel),
 * BERT (BertForMaskedLM) and the Llama family (hf_config_llama.ts). The spec comes from config.json
 * alone; a config whose architecture we cannot build is refused naming its model_type and
 * architectures, and a key whose value our model cannot honour (another activation, an untied GPT-2
 * head, ...) is refused naming the key, so a folder never loads into a model that computes something
 * else.
 */
import type { BertSpec, Gpt2Spec, ModelSpec } from '../models/index.js';
import { ConfigError } from '../../util/errors.js';
import { LLAMA_FAMILY } from './hf_config_llama.js';
import { ConfigReader, type HfConfig, type HfFamily } from './hf_config_reader.js';

export type { HfConfig };

/** The token ids a config.json carries (eos may be a list: Llama 3's instruct models end on several). */
export interface HfTokenIds {
  bos?: number;
  eos?: number | number[];
  pad?: number;
}

const GPT2: HfFamily = {
  modelTypes: ['gpt2'],
  architectures: ['GPT2LMHeadModel', 'GPT2Model'],
  toSpec(c) {
    c.oneOf('activation_function', ['gelu_new', 'gelu_pytorch_tanh'], 'smolcluster\'s GPT-2 uses the tanh GELU (gelu_new)');
    c.oneOf('tie_word_embeddings', [true], 'smolcluster\'s GPT-2 ties its head to the token embedding');
    c.oneOf('scale_attn_by_inverse_layer_idx', [false], 'attention is scaled by 1/sqrt(head size) only');
    c.oneOf('scale_attn_weights', [true], 'attention is scaled by 1/sqrt(head size)');
    c.oneOf('add_cross_attention', [false], 'smolcluster\'s GPT-2 is decoder-only');
    c.oneOf('layer_norm_epsilon', [1e-5], 'smolcluster\'s GPT-2 LayerNorms use eps 1e-5');
    const width = c.size('n_embd');
    if (c.has('n_inner') && c.size('n_inner') !== 4 * width) throw c.error('n_inner', `${c.json.n_inner} is not supported: the MLP is 4 × n_embd (${4 * width})`);
    const spec: Gpt2Spec = {
      type: 'gpt2', vocabSize: c.size('vocab_size'), context: c.size('n_positions', c.json.n_ctx as number | undefined),
      layers: c.size('n_layer'), width, heads: c.size('n_head'), dropout: c.number('resid_pdrop', 0.1),
    };
    if (width % spec.heads !== 0) throw c.error('n_head', `n_embd ${width} is not divisible by ${spec.heads} heads`);
    return spec;
  },
  toConfig(spec) {
    const s = spec as Gpt2Spec;
    return {
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: s.vocabSize, n_positions: s.context, n_embd: s.width,
      n_layer: s.layers, n_head: s.heads, n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5,
      resid_pdrop: s.dropout, embd_pdrop: s.dropout, attn_pdrop: s.dropout, scale_attn_weights: true, tie_word_embeddings: true,
    };
  },
};

const BERT: HfFamily = {
  modelTypes: ['bert'],
  architectures: ['BertForMaskedLM', 'BertForPreTraining', 'BertModel'],
  toSpec(c) {
    c.oneOf('hidden_act', ['gelu'], 'smolcluster\'s BERT uses the exact (erf) GELU');
    c.oneOf('layer_norm_eps', [1e-12], 'smolcluster\'s BERT LayerNorms use eps 1e-12');
    c.oneOf('type_vocab_size', [2], 'smolcluster\'s BERT has two token types');
    c.oneOf('position_embedding_type', ['absolute'], 'smolcluster\'s BERT learns absolute positions');
    c.oneOf('is_decoder', [false], 'smolcluster\'s BERT is an encoder');
    const spec: BertSpec = {
      type: 'bert', vocabSize: c.size('vocab_size'), context: c.size('max_position_embeddings'), layers: c.size('num_hidden_layers'),
      width: c.size('hidden_size'), heads: c.size('num_attention_heads'), intermediate: c.size('intermediate_size'),
      dropout: c.number('hidden_dropout_prob', 0.1),
    };
    if (spec.width % spec.heads !== 0) throw c.error('num_attention_heads', `hidden_size ${spec.width} is not divisible by ${spec.heads} heads`);
    return spec;
  },
  toConfig(spec) {
    const s = spec as BertSpec;
    return {
      architectures: ['BertForMaskedLM'], model_type: 'bert', vocab_size: s.vocabSize, max_position_embeddings: s.context,
      num_hidden_layers: s.layers, hidden_size: s.width, num_attention_heads: s.heads, intermediate_size: s.intermediate,
      hidden_act: 'gelu', layer_norm_eps: 1e-12, type_vocab_size: 2, position_embedding_type: 'absolute',
      hidden_dropout_prob: s.dropout, attention_probs_dropout_prob: s.dropout, pad_token_id: 0, tie_word_embeddings: true,
    };
  },
};

const FAMILIES: readonly HfFamily[] = [GPT2, BERT, LLAMA_FAMILY];

/** The model_types we read, for messages. */
export function supportedModelTypes(): string[] {
  return FAMILIES.flatMap((f) => f.modelTypes);
}

function familyOf(c: ConfigReader): HfFamily {
  const type = c.json.model_type;
  const archs = Array.isArray(c.json.architectures) ? (c.json.architectures as unknown[]) : [];
  const family = typeof type === 'string'
    ? FAMILIES.find((f) => f.modelTypes.includes(type))
    : FAMILIES.find((f) => archs.some((a) => f.architectures.includes(a as string)));
  if (!family) {
    throw c.error('model_type', `model_type ${JSON.stringify(type)} (architectures ${JSON.stringify(archs)}) is not an architecture smolcluster builds; it reads ${supportedModelTypes().join(', ')}`);
  }
  const foreign = archs.filter((a) => typeof a === 'string' && !family.architectures.includes(a));
  if (foreign.length > 0) {
    throw c.error('architectures', `${JSON.stringify(foreign)} is not supported for model_type ${JSON.stringify(type)}: smolcluster builds ${family.architectures.join(', ')}`);
  }
  return family;
}

/** The spec of the model a config.json describes (`file` names it in errors). */
export function specFromHfConfig(json: HfConfig, file = 'config.json'): ModelSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(file, '', 'is not a JSON object');
  const c = new ConfigReader(json, file);
  return familyOf(c).toSpec(c);
}

/** The token ids of a config.json (each optional; eos may be a list). */
export function hfTokenIds(json: HfConfig, file = 'config.json'): HfTokenIds {
  const c = new ConfigReader(json, file);
  const id = (key: string): number | undefined => {
    if (!c.has(key)) return undefined;
    const v = json[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw c.error(key, `must be a token id, got ${JSON.stringify(v)}`);
    return v;
  };
  const eos = Array.isArray(json.eos_token_id)
    ? json.eos_token_id.map((v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw c.error(`eos_token_id[${i}]`, `must be a token id, got ${JSON.stringify(v)}`);
      return v;
    })
    : id('eos_token_id');
  return definedOnly({ bos: id('bos_token_id'), eos, pad: id('pad_token_id') });
}

/** A config.json for the spec: its family's keys, model_type, architectures, torch_dtype and the token ids. */
export function hfConfigFromSpec(spec: ModelSpec, opts: { dtype?: 'float32' | 'bfloat16' | 'float16'; tokens?: HfTokenIds } = {}): HfConfig {
  const family = FAMILIES.find((f) => f.modelTypes.includes(hfModelType(spec)));
  if (!family) throw new Error(`a ${spec.type} model has no Hugging Face config.json (only ${supportedModelTypes().join(', ')})`);
  const t = opts.tokens ?? {};
  return {
    ...family.toConfig(spec),
    torch_dtype: opts.dtype ?? 'float32',
    ...definedOnly({ bos_token_id: t.bos, eos_token_id: t.eos, pad_token_id: t.pad }),
  };
}

/** The model_type a spec is written as. */
function hfModelType(spec: ModelSpec): string {
  const variant = (spec as { modelType?: unknown }).modelType;
  return typeof variant === 'string' ? variant : spec.type;
}

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
