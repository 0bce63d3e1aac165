import type { Module } from '../module.js';
import { type CnnSpec, buildCnn } from './cnn.js';
import { type MlpSpec, buildMlp } from './mlp.js';

export type { CnnSpec, MlpSpec };
export type ModelSpec = MlpSpec | CnnSpec;
export type ModelType = ModelSpec['type'];

/** Builds a model from its spec; the seed alone determines the initial parameters. */
export function createModel(spec: ModelSpec, seed: number): Module {
  switch (spec.type) {
    case 'mlp': return buildMlp(spec, seed);
    case 'cnn': return buildCnn(spec, seed);
  }
}

/** Default spec of each model type for a dataset's input shape [C, H, W] and class count. */
export function defaultSpec(type: ModelType, inputShape: readonly number[], classes: number): ModelSpec {
  switch (type) {
    case 'mlp': return { type, inputDim: inputShape.reduce((n, d) => n * d, 1), hidden: 128, out: classes };
    case 'cnn': return { type, inChannels: inputShape[0], inputSize: inputShape[1], out: classes };
  }
}

/** A one-line description, e.g. "mlp 784-128-10". */
export function describeSpec(spec: ModelSpec): string {
  switch (spec.type) {
    case 'mlp': return `mlp ${[spec.inputDim, ...[spec.hidden].flat(), spec.out].join('-')}`;
    case 'cnn': return `cnn ${spec.inChannels}×${spec.inputSize}×${spec.inputSize} → ${spec.out}`;
  }
}
