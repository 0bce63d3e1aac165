import type { BertSpec } from './bert.js';
import type { Gpt2Spec } from './gpt2.js';
import type { LlamaSpec } from './llama.js';
import type { BertName, Gpt2Name, LlamaName, ResNetName } from './names.js';
import { RESNET_DEPTHS, type ResNetSpec } from './resnet.js';

/**
 * Named model sizes. A name picks a family and its published (or CPU-sized) shape; `SizeOverrides`
 * (the --layers --width --heads --dropout flags) change any of it. The guide's names `resnet50`,
 * `bert` and `gpt2` are presets like the others (`bert` = bert-base).
 *
 * A transformer's positions are the model's, not the training window's: --context only sets the
 * window (the dataset's sequence length), so a 1024-position gpt2 fine-tunes at --context 256. The
 * positions grow only for a window longer than the preset has.
 */
export interface SizeOverrides {
  layers?: number;
  width?: number;
  heads?: number;
  /** The model's positions (library callers only: the command line's --context never sets them). */
  context?: number;
  /** Dropout probability of the attention and residual paths (--dropout; default the preset's). */
  dropout?: number;
}

/** A transformer preset's shape. */
export type TransformerSize = { layers: number; width: number; heads: number; context: number; dropout: number };

/** Published sizes (gpt2 = 124M, gpt2-medium = 355M) and minGPT-like small ones for CPU work. */
export const GPT2_SIZES: Record<Gpt2Name, TransformerSize> = {
  gpt2: { layers: 12, width: 768, heads: 12, context: 1024, dropout: 0.1 },
  'gpt2-medium': { layers: 24, width: 1024, heads: 16, context: 1024, dropout: 0.1 },
  'gpt2-mini': { layers: 6, width: 192, heads: 6, context: 256, dropout: 0 },
  'gpt2-tiny': { layers: 2, width: 128, heads: 4, context: 128, dropout: 0 },
};

/** BERT-base and Google's compact BERTs (Turc et al. 2019: mini = L4/H256, tiny = L2/H128). */
export const BERT_SIZES: Record<BertName, TransformerSize> = {
  bert: { layers: 12, width: 768, heads: 12, context: 512, dropout: 0.1 },
  'bert-base': { layers: 12, width: 768, heads: 12, context: 512, dropout: 0.1 },
  'bert-mini': { layers: 4, width: 256, heads: 4, context: 512, dropout: 0 },
  'bert-tiny': { layers: 2, width: 128, heads: 2, context: 512, dropout: 0 },
};

function positive(name: string, field: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`${name}: --${field} must be a positive integer, got ${v}`);
}

function sized(name: string, base: TransformerSize, o: SizeOverrides, sequence: number): TransformerSize {
  for (const f of ['layers', 'width', 'heads', 'context'] as const) positive(name, f, o[f]);
  if (o.dropout !== undefined && !(o.dropout >= 0 && o.dropout < 1)) throw new Error(`${name}: --dropout must be a probability, 0 ≤ p < 1, got ${o.dropout}`);
  const s = { ...base, ...definedOnly(o) };
  // A dataset longer than the preset's positions gets as many positions as it needs.
  if (o.context === undefined) s.context = Math.max(s.context, sequence);
  if (sequence > s.context) throw new Error(`${name}: sequences of ${sequence} tokens exceed --context ${s.context}`);
  if (s.width % s.heads !== 0) throw new Error(`${name}: width ${s.width} is not divisible by ${s.heads} heads`);
  return s;
}

function definedOnly(o: SizeOverrides): SizeOverrides {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export function gpt2Spec(name: Gpt2Name, vocabSize: number, sequence: number, o: SizeOverrides = {}): Gpt2Spec {
  const s = sized(name, GPT2_SIZES[name], o, sequence);
  return { type: 'gpt2', vocabSize, context: s.context, layers: s.layers, width: s.width, heads: s.heads, dropout: s.dropout };
}

export function bertSpec(name: BertName, vocabSize: number, sequence: number, o: SizeOverrides = {}): BertSpec {
  const s = sized(name, BERT_SIZES[name], o, sequence);
  return {
    type: 'bert', vocabSize, context: s.context, layers: s.layers, width: s.width, heads: s.heads,
    intermediate: 4 * s.width, dropout: s.dropout,
  };
}

/**
 * resnet18/34/50 for an input [C, H, W]: the CIFAR stem up to 64×64 inputs, the ImageNet stem above.
 * --layers picks another published depth (18, 34, 50, 101, 152); --width the first stage's channels.
 */
export function resnetSpec(name: ResNetName, inputShape: readonly number[], classes: number, o: SizeOverrides = {}): ResNetSpec {
  positive(name, 'width', o.width);
  const depth = o.layers ?? Number(name.slice('resnet'.length));
  const shape = RESNET_DEPTHS[depth];
  if (!shape) throw new Error(`${name}: --layers ${depth} is not a ResNet depth (18, 34, 50, 101 or 152)`);
  if (inputShape.length !== 3 || inputShape[1] !== inputShape[2]) {
    throw new Error(`${name}: needs square image inputs [C, H, W], got [${inputShape.join(', ')}]`);
  }
  return {
    type: 'resnet', block: shape.block, blocks: shape.blocks, width: o.width ?? 64,
    stem: inputShape[1] <= 64 ? 'cifar' : 'imagenet', inChannels: inputShape[0], inputSize: inputShape[1], out: classes,
  };
}

/** A Llama-family preset: the whole spec but the vocabulary (which comes from the dataset). */
export type LlamaSize = Omit<LlamaSpec, 'type' | 'vocabSize'> & { vocabSize: number };

const llamaBase = { ropeScaling: null, qkvBias: false, qkNorm: false, dropout: 0 } as const;

/**
 * Each model's config.json (Hugging Face hub, checked 2026-11), its published vocabulary kept for
 * reference (a Hugging Face folder's own config wins over these: nn/interchange). `llama-tiny` is for
 * tests: 2 layers × 64, 4 heads / 2 kv heads of 16, untied; `mixtral-tiny` the same with 8 experts, top 2.
 */
export const LLAMA_SIZES: Record<LlamaName, LlamaSize> = {
  'smollm2-135m': {
    ...llamaBase, modelType: 'llama', vocabSize: 49152, context: 8192, layers: 30, width: 576, intermediate: 1536,
    heads: 9, kvHeads: 3, headDim: 64, ropeTheta: 1e5, rmsEps: 1e-5, tieEmbeddings: true,
  },
  'smollm2-360m': {
    ...llamaBase, modelType: 'llama', vocabSize: 49152, context: 8192, layers: 32, width: 960, intermediate: 2560,
    heads: 15, kvHeads: 5, headDim: 64, ropeTheta: 1e5, rmsEps: 1e-5, tieEmbeddings: true,
  },
  'qwen2.5-0.5b': {
    ...llamaBase, modelType: 'qwen2', vocabSize: 151936, context: 32768, layers: 24, width: 896, intermediate: 4864,
    heads: 14, kvHeads: 2, headDim: 64, ropeTheta: 1e6, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: true,
  },
  'qwen3-0.6b': {
    ...llamaBase, modelType: 'qwen3', vocabSize: 151936, context: 40960, layers: 28, width: 1024, intermediate: 3072,
    heads: 16, kvHeads: 8, headDim: 128, ropeTheta: 1e6, rmsEps: 1e-6, tieEmbeddings: true, qkNorm: true,
  },
  'llama-3.2-1b': {
    ...llamaBase, modelType: 'llama', vocabSize: 128256, context: 131072, layers: 16, width: 2048, intermediate: 8192,
    heads: 32, kvHeads: 8, headDim: 64, ropeTheta: 5e5, rmsEps: 1e-5, tieEmbeddings: true,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
  },
  'llama-tiny': {
    ...llamaBase, modelType: 'llama', vocabSize: 256, context: 128, layers: 2, width: 64, intermediate: 128,
    heads: 4, kvHeads: 2, headDim: 16, ropeTheta: 1e4, rmsEps: 1e-5, tieEmbeddings: false,
  },
  // llama-tiny's shape with Mixtral's experts: 8 of them, each token to 2 (Mixtral-8x7B's routing and router_aux_loss_coef).
  'mixtral-tiny': {
    ...llamaBase, modelType: 'mixtral', vocabSize: 256, context: 128, layers: 2, width: 64, intermediate: 128,
    heads: 4, kvHeads: 2, headDim: 16, ropeTheta: 1e6, rmsEps: 1e-5, tieEmbeddings: false,
    moe: { experts: 8, topK: 2, auxLossCoef: 0.02 },
  },
};

/**
 * A Llama-family spec for a dataset's vocabulary and sequence length. --layers keeps the shape of a
 * layer; --width or --heads make head_dim width / heads and scale the MLP with the width (the
 * preset's ratio). The kv heads stay where they divide the heads, else keep the preset's queries
 * per kv head. The positions (max_position_embeddings) are the preset's, at least the sequence (the
 * window --context sets); --dropout sets the attention and residual dropout.
 */
export function llamaSpec(name: LlamaName, vocabSize: number, sequence: number, o: SizeOverrides = {}): LlamaSpec {
  const base = LLAMA_SIZES[name];
  const s = sized(name, { layers: base.layers, width: base.width, heads: base.heads, context: base.context, dropout: base.dropout }, o, sequence);
  const reshaped = o.width !== undefined || o.heads !== undefined;
  return {
    ...base, type: 'llama', vocabSize, context: s.context, layers: s.layers, width: s.width, heads: s.heads,
    kvHeads: kvHeadsFor(name, base, s.heads),
    headDim: reshaped ? s.width / s.heads : base.headDim,
    intermediate: reshaped ? Math.round((base.intermediate * s.width) / base.width) : base.intermediate,
    dropout: s.dropout,
  };
}

function kvHeadsFor(name: LlamaName, base: LlamaSize, heads: number): number {
  if (heads % base.kvHeads === 0) return base.kvHeads;
  const perKv = base.heads / base.kvHeads;
  if (heads % perKv === 0) return heads / perKv;
  throw new Error(`${name}: --heads ${heads} divides neither into the preset's ${base.kvHeads} kv heads nor into groups of ${perKv} queries per kv head`);
}
