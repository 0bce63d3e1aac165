/**
 * Where a pipeline stage's weights come from, and the format each one is held in:
 * - a float file (a Hugging Face folder, a safetensors file, smolcluster's model file), with a
 *   PEFT adapter merged and, with --quantize, each weight matrix in the format the plan of the
 *   WHOLE model gives it (nn/quantize_model.ts): llama.cpp's rules pick some layers' formats by
 *   their index among all the layers, so a layer is held alike whichever stage holds it, and the
 *   tokens are one process's given the same --quantize;
 * - a GGUF file, each tensor in the format the file holds it (a float one widened to float32);
 * - an MLX quantized folder, each matrix with scales beside it in its MLX format, the rest float32;
 * - the seed's recipes (tests, the speed probe; a training run without --init), with --quantize
 *   (--lora-base-dtype) planned as a float file's.
 * Generation's stages (serve/stages/stage_model.ts) and training's over a quantized base
 * (train/strategies/pipeline_quantized.ts) load them, serve/stages/stage_placement.ts counts the
 * bytes they will hold, and the stage signature carries what every stage must agree on about them.
 */
import { createHash } from 'node:crypto';
import { ModelSourceError } from '../../generate/model_source.js';
import type { GgufFile } from '../../nn/interchange/gguf.js';
import type { ModelLayer } from '../../nn/layer_list.js';
import { ggufFormats, ggufSources } from '../../nn/interchange/gguf_llama.js';
import { type MlxQuantization, MlxFolder } from '../../nn/interchange/mlx_folder.js';
import { SafetensorsEntries } from '../../nn/interchange/safetensors_entries.js';
import { adapterDigest } from '../../nn/lora/adapter_deltas.js';
import type { LlamaSpec, ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { type QuantScheme, quantizationPlan } from '../../nn/quantize_model.js';
import type { Precision } from '../../tensor/precision.js';
import { type QuantType, bitsPerWeight } from '../../tensor/quant/formats.js';
import type { Tensor } from '../../tensor/tensor.js';

export type StageWeights =
  | { file: string; adapter?: string; quantize?: QuantScheme }
  | { gguf: GgufFile; quantize?: QuantScheme }
  | { mlx: string; quantization: MlxQuantization; quantize?: QuantScheme }
  | { seed: number; quantize?: QuantScheme };

/**
 * The parameters of the whole model (`whole`, built deferred: it holds nothing) that a stage holds
 * quantized, each with its format: the GGUF file's, or the --quantize plan's. --quantize is
 * refused where one process refuses it: over a model outside the Llama family, or a file quantized already.
 */
export function heldFormats(spec: ModelSpec, whole: Module, weights: StageWeights): Map<string, QuantType> {
  const fromFile = 'gguf' in weights ? ggufFormats(weights.gguf, ggufSources(weights.gguf, spec as LlamaSpec, whole.namedParameters()))
    : 'mlx' in weights ? mlxFormats(weights, whole) : new Map<string, QuantType>();
  if (weights.quantize === undefined) return fromFile;
  const where = 'gguf' in weights ? weights.gguf.path : 'file' in weights ? weights.file : 'mlx' in weights ? weights.mlx : `the model of seed ${weights.seed}`;
  if (spec.type !== 'llama') throw new ModelSourceError(where, `holds a ${spec.type} model; --quantize takes the Llama family (llama, qwen2, qwen3, mixtral)`);
  if (fromFile.size > 0) throw new ModelSourceError(where, `is quantized already; --quantize ${weights.quantize} takes a float model`);
  const plan = quantizationPlan(whole, spec, weights.quantize);
  return new Map([...plan].filter((entry): entry is [string, QuantType] => entry[1] !== null));
}

/** An MLX folder's quantized parameters of `whole` and their formats, from its headers (every tensor's place checked). */
function mlxFormats(weights: { mlx: string; quantization: MlxQuantization }, whole: Module): Map<string, QuantType> {
  const folder = new MlxFolder(weights.mlx, weights.quantization);
  try {
    return folder.formats(whole.namedParameters());
  } finally {
    folder.close();
  }
}

/**
 * What every stage must agree on about its weights beyond the model's shape, as settings a refusal
 * names (comm/tcp/signature_settings.ts): the adapter's contents, the --quantize scheme, the GGUF
 * file's tensor formats; absent where they do not apply.
 */
export function weightsSettings(weights: StageWeights | undefined): Record<string, string> {
  if (weights === undefined || 'seed' in weights) return {};
  const settings: Record<string, string> = {};
  if ('file' in weights && weights.adapter !== undefined) settings['--adapter'] = `contents ${adapterDigest(weights.adapter)}`;
  if ('gguf' in weights) settings['GGUF tensor formats'] = formatsDigest([...weights.gguf.tensors.values()].map((t) => `${t.name}:${t.type}`));
  if ('mlx' in weights) settings['MLX quantization'] = `${weights.quantization.bits}-bit, tensors ${formatsDigest(mlxTensorTypes(weights.mlx))}`;
  if (weights.quantize !== undefined) settings['--quantize'] = weights.quantize;
  return settings;
}

/** The --quantize line of a model whose stages quantize it: the quantized matrices' bytes in float32 and as held (as one process's loading reports them). */
export function quantizedSummary(whole: Module, formats: ReadonlyMap<string, QuantType>): { bytesBefore: number; bytesAfter: number } {
  let [bytesBefore, bytesAfter] = [0, 0];
  for (const [name, p] of whole.namedParameters()) {
    const format = formats.get(name);
    if (format === undefined) continue;
    bytesBefore += p.size * 4;
    bytesAfter += (p.size * bitsPerWeight(format)) / 8;
  }
  return { bytesBefore, bytesAfter };
}

/** A short digest of a file's tensors and their types (`name:type` each): two files of one shape quantized otherwise differ. */
function formatsDigest(tensors: readonly string[]): string {
  const hash = createHash('sha256');
  for (const t of tensors) hash.update(`${t};`);
  return hash.digest('hex').slice(0, 16);
}

/** An MLX folder's tensors as `name:dtype` (scales in BF16 or F16), from its headers. */
function mlxTensorTypes(dir: string): string[] {
  const tensors = new SafetensorsEntries(dir);
  try {
    return [...tensors.entries].map(([name, e]) => `${name}:${e.dtype}`).sort();
  } finally {
    tensors.close();
  }
}

/** The bytes a parameter (by its name in the whole model) takes as its stage holds it. */
export type ParameterBytes = (name: string, p: Tensor) => number;

/** Each layer's weights (a tied weight it reads counted: a stage without its owner keeps a copy). */
export function layerWeights(layers: readonly ModelLayer[]): number[] {
  return perLayer(layers, (_, p) => p.size);
}

/** Each layer's bytes of weights as held (a tied weight it reads counted, in its owner's format). */
export function layerBytes(layers: readonly ModelLayer[], bytesOf: ParameterBytes): number[] {
  return perLayer(layers, bytesOf);
}

/**
 * A parameter's bytes as a stage holds it: a quantized one its format's; a float one 4, or 6 in
 * bf16 (its bf16 cast is held beside it for the stage's life: serve/stages/stage_rows.ts; a quantized one has none).
 */
export function heldBytes(formats: ReadonlyMap<string, QuantType>, precision: Precision = 'fp32'): ParameterBytes {
  return (name, p) => {
    const format = formats.get(name);
    return format !== undefined ? (p.size * bitsPerWeight(format)) / 8 : p.size * (precision === 'bf16' ? 6 : 4);
  };
}

/** `cost` summed over each layer's parameters, each counted once (a shared module in the first layer that lists it). */
function perLayer(layers: readonly ModelLayer[], cost: (name: string, p: Tensor) => number): number[] {
  const seen = new Set<Tensor>();
  return layers.map((l) => {
    let n = 0;
    for (const [prefix, m] of l.modules) for (const [name, p] of m.namedParameters(`${prefix}.`)) if (!seen.has(p)) (seen.add(p), (n += cost(name, p)));
    return n + (l.tied ? cost(l.tied.name, l.tied.tensor) : 0);
  });
}
