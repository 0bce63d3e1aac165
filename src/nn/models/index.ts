import type { Module } from '../module.js';
import { type BertSpec, buildBert } from './bert.js';
import { type CnnSpec, buildCnn } from './cnn.js';
import { type Gpt2Spec, buildGpt2 } from './gpt2.js';
import { type LlamaSpec, buildLlama } from './llama.js';
import { type MlpSpec, buildMlp } from './mlp.js';
import {
  BERT_MODELS, type BertName, GPT2_MODELS, type Gpt2Name, IMAGE_MODELS, LLAMA_MODELS, type LlamaName, MODEL_NAMES, type ModelType, type ResNetName,
} from './names.js';
import { type SizeOverrides, bertSpec, gpt2Spec, llamaSpec, resnetSpec } from './presets.js';
import { type ResNetSpec, buildResNet } from './resnet.js';

export type { BertSpec, CnnSpec, Gpt2Spec, MlpSpec, ResNetSpec, SizeOverrides };
export type { LlamaSpec };
export type { RopeScaling } from './llama.js';
export type { MoeSpec, Routing } from '../layers/sparse_moe.js';
export { checkLlamaSpec } from './llama.js';
export type ModelSpec = MlpSpec | CnnSpec | ResNetSpec | Gpt2Spec | BertSpec | LlamaSpec;

export { MODEL_NAMES, type ModelType };
export {
  IMAGE_MODELS, GPT2_MODELS, BERT_MODELS, LLAMA_MODELS, type ResNetName, type Gpt2Name, type BertName, type LlamaName,
} from './names.js';
/** The named sizes (presets) and the specs they give; `defaultSpec` picks among them by name. */
export {
  GPT2_SIZES, BERT_SIZES, LLAMA_SIZES, gpt2Spec, bertSpec, llamaSpec, resnetSpec, type TransformerSize, type LlamaSize,
} from './presets.js';

/** Models that read token ids (a token dataset) rather than images or feature vectors. */
export function isTokenModel(type: ModelType): boolean {
  return [...GPT2_MODELS, ...BERT_MODELS, ...LLAMA_MODELS].includes(type as never);
}

/** Builds a model from its spec; the seed alone determines the initial parameters. */
export function createModel(spec: ModelSpec, seed: number): Module {
  switch (spec.type) {
    case 'mlp': return buildMlp(spec, seed);
    case 'cnn': return buildCnn(spec, seed);
    case 'resnet': return buildResNet(spec, seed);
    case 'gpt2': return buildGpt2(spec, seed);
    case 'bert': return buildBert(spec, seed);
    case 'llama': return buildLlama(spec, seed);
  }
}

/**
 * The spec of a named model for a dataset: image inputs [C, H, W] with `classes` outputs, or token
 * inputs [T] with a vocabulary of `classes`. `sizes` are the --layers/--width/--heads/--context flags.
 */
export function defaultSpec(type: ModelType, inputShape: readonly number[], classes: number, sizes: SizeOverrides = {}): ModelSpec {
  switch (type) {
    case 'mlp': return { type, inputDim: inputShape.reduce((n, d) => n * d, 1), hidden: 128, out: classes };
    case 'cnn':
    case 'simple_cnn': return { type: 'cnn', inChannels: inputShape[0], inputSize: inputShape[1], out: classes };
    default:
      if ((IMAGE_MODELS as readonly string[]).includes(type)) return resnetSpec(type as ResNetName, inputShape, classes, sizes);
      if (inputShape.length !== 1) throw new Error(`${type}: needs token inputs [T] (a text dataset), got [${inputShape.join(', ')}]`);
      if ((GPT2_MODELS as readonly string[]).includes(type)) return gpt2Spec(type as Gpt2Name, classes, inputShape[0], sizes);
      if ((LLAMA_MODELS as readonly string[]).includes(type)) return llamaSpec(type as LlamaName, classes, inputShape[0], sizes);
      return bertSpec(type as BertName, classes, inputShape[0], sizes);
  }
}

/** A one-line description, e.g. "mlp 784-128-10" or "gpt2 12L×768 12H ctx 1024 vocab 50257". */
export function describeSpec(spec: ModelSpec): string {
  switch (spec.type) {
    case 'mlp': return `mlp ${[spec.inputDim, ...[spec.hidden].flat(), spec.out].join('-')}`;
    case 'cnn': return `cnn ${spec.inChannels}×${spec.inputSize}×${spec.inputSize} → ${spec.out}`;
    case 'resnet': {
      const depth = 2 + spec.blocks.reduce((a, b) => a + b, 0) * (spec.block === 'basic' ? 2 : 3);
      return `resnet${depth} (${spec.stem} stem, width ${spec.width}) ${spec.inChannels}×${spec.inputSize}×${spec.inputSize} → ${spec.out}`;
    }
    case 'gpt2':
    case 'bert': return `${spec.type} ${spec.layers}L×${spec.width} ${spec.heads}H ctx ${spec.context} vocab ${spec.vocabSize}`;
    case 'llama': return `${spec.modelType} ${spec.layers}L×${spec.width} ${spec.heads}H/${spec.kvHeads}KV×${spec.headDim} mlp ${spec.intermediate}${spec.moe ? ` ×${spec.moe.experts} experts top ${spec.moe.topK}` : ''} ctx ${spec.context} vocab ${spec.vocabSize}`;
  }
}
