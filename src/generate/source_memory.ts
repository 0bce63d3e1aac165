/**
 * The spec and the held formats of what `--model` names, read from headers only (config.json, a
 * GGUF header, a safetensors or model file's header), so that its memory is known before a weight
 * is read (inference_memory.ts). A pipeline's driver (serve/stages/stage_source.ts) reads the spec
 * the same way.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { readModelHeader } from '../nn/checkpoint.js';
import type { GgufFile } from '../nn/interchange/gguf.js';
import { ggufFormats, ggufSources } from '../nn/interchange/gguf_llama.js';
import { specFromHfConfig } from '../nn/interchange/hf_config.js';
import { readHfConfig } from '../nn/interchange/hf_folder.js';
import { mlxQuantizationOf } from '../nn/interchange/mlx_folder.js';
import { architectureOf } from '../nn/interchange/model_io.js';
import { isSafetensorsPath, readSafetensorsHeader } from '../nn/interchange/safetensors.js';
import type { LlamaSpec, ModelSpec } from '../nn/models/index.js';
import { type QuantScheme, planFromShapes } from '../nn/quantize_model.js';
import type { QuantType } from '../tensor/quant/formats.js';
import { type InferenceMemory, type InferenceShape, estimateInferenceMemory, parameterShapes } from './inference_memory.js';
import type { ResolvedSource } from './model_source.js';

/** The spec of a resolved source (not a GGUF file: specFromGguf reads its header). */
export function sourceSpec(resolved: ResolvedSource): ModelSpec {
  if (resolved.kind === 'folder') return specFromHfConfig(readHfConfig(resolved.path), join(resolved.path, 'config.json'));
  if (isSafetensorsPath(resolved.path)) {
    const fd = openSync(resolved.path, 'r');
    try {
      return architectureOf(resolved.path, readSafetensorsHeader(resolved.path, fd).metadata.architecture);
    } finally {
      closeSync(fd);
    }
  }
  return readModelHeader(resolved.path).header.architecture as ModelSpec;
}

/** Where the weights come from: a GGUF file (its F16 matrices kept as f16 blocks with `f16Blocks`: a generator's load), a folder, --quantize. */
export interface SourceOfWeights {
  gguf?: GgufFile;
  f16Blocks?: boolean;
  folder?: string;
  quantize?: QuantScheme;
}

/** The weights held quantized, by name: a GGUF file's, an MLX folder's groups, or --quantize's plan over a float model. */
export function sourceFormats(spec: ModelSpec, params: readonly [string, readonly number[]][], o: SourceOfWeights): Map<string, QuantType> {
  if (o.gguf) return ggufFormats(o.gguf, ggufSources(o.gguf, spec as LlamaSpec, params.map(([n, shape]) => [n, { shape }] as const)), { f16Blocks: o.f16Blocks });
  const mlx = o.folder === undefined ? null : mlxQuantizationOf(readHfConfig(o.folder), join(o.folder, 'config.json'));
  const scheme = mlx ? (`mlx${mlx.bits}` as QuantScheme) : o.quantize;
  if (scheme === undefined || spec.type !== 'llama') return new Map();
  const plan = planFromShapes(params, spec, scheme);
  return new Map([...plan].filter((e): e is [string, QuantType] => e[1] !== null));
}

/**
 * The memory loading `spec`'s model from that source will take, as `shape` asks, and (a Llama-family
 * model) the same model's from a q4_k_m file, a way out a refusal names.
 */
export function sourceMemory(spec: ModelSpec, o: SourceOfWeights, shape: Omit<InferenceShape, 'formats'>): { need: InferenceMemory; fourBit(): InferenceMemory | undefined } {
  const params = parameterShapes(spec);
  // A GGUF file's model is built deferred and each tensor bound as it is read (nn/interchange/gguf_llama.ts): in place.
  const inPlace = shape.inPlace === true || o.gguf !== undefined;
  const need = estimateInferenceMemory(spec, { ...shape, inPlace, formats: sourceFormats(spec, params, o), quantizedAtLoad: o.quantize !== undefined && o.gguf === undefined }, params);
  // Asked only for a refusal: a shape whose rows are no whole blocks has no q4_k_m file.
  const fourBit = (): InferenceMemory | undefined => {
    if (spec.type !== 'llama') return undefined;
    try {
      return estimateInferenceMemory(spec, { ...shape, formats: sourceFormats(spec, params, { quantize: 'q4_k_m' }) }, params);
    } catch (e) {
      if (e instanceof RangeError) return undefined;
      throw e;
    }
  };
  return { need, fourBit };
}
