/**
 * Where each generation stage's layers go: the training placement (parallel/pipeline/placement.ts,
 * by measured speed and memory), fed with what generation costs. Every rank times one transformer
 * block's decode forward on its own cores (the block built alone from the seed's recipes, so no rank
 * ever holds the whole model) and gives its free memory; a layer's time is its matmul weights × the
 * rank's ms per weight (the embedding is a lookup: next to nothing), and its bytes are its weights
 * as they will be held (a quantized one at its format's bytes: stage_weights.ts) plus its KV cache
 * at the full context for every row (--max-batch). All ranks gather the same table and compute the
 * same plan.
 */
import type { ModelLayer } from '../../nn/layer_list.js';
import type { ModelSpec } from '../../nn/models/index.js';
import { type Placement, placeStages } from '../../parallel/pipeline/placement.js';
import { noGrad } from '../../tensor/autograd.js';
import type { Precision } from '../../tensor/precision.js';
import { type QuantType, bitsPerWeight } from '../../tensor/quant/formats.js';
import { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { loadStage } from './stage_model.js';

/** The bytes a parameter (by its name in the whole model) takes as its stage holds it. */
export type ParameterBytes = (name: string, p: Tensor) => number;

export interface RankProbe {
  /** Decode-forward ms per weight of a block on this rank. */
  msPerWeight: number;
  memoryBytes: number;
}

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
 * bf16 (its bf16 cast is held beside it for the stage's life: stage_rows.ts; a quantized one has none).
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

/** The floats one layer's KV cache holds for `rows` rows at the model's full context (0 for a layer without attention). */
function kvFloats(spec: ModelSpec, rows: number): number {
  if (spec.type === 'gpt2') return 2 * spec.width * spec.context * rows;
  if (spec.type === 'llama') return 2 * spec.kvHeads * spec.headDim * spec.context * rows;
  return 0;
}

/** Times the decode forward of block 0 (layer 1) for `rows` rows on this rank, over about `budgetMs`. */
export function probeRank(spec: ModelSpec, rows: number, memoryBytes: number, budgetMs = 150): RankProbe {
  const block = loadStage(spec, 1, 2, { seed: 0 });
  const width = (spec as { width: number }).width;
  const rng = new Rng(1);
  const x = Tensor.fromHost(Float32Array.from({ length: rows * width }, () => rng.normal()), [rows, 1, width]);
  noGrad(() => block.forward(x));
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < budgetMs && times.length < 50)) {
    const t0 = performance.now();
    // The cpu computes eagerly: the forward's return is its end.
    noGrad(() => block.forward(x));
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const weights = block.parameters().reduce((n, p) => n + p.size, 0);
  return { msPerWeight: times[Math.floor(times.length / 2)] / weights, memoryBytes };
}

/**
 * The plan: stage s (rank s) takes layers ranges[s]. `bytesOf` prices each weight as it will be held
 * (heldBytes). Refused by name when the layers do not fit the ranks' memory.
 */
export function placeGeneration(spec: ModelSpec, layers: readonly ModelLayer[], probes: readonly RankProbe[], o: { maxBatch: number; bytesOf: ParameterBytes }): Placement {
  const weights = layerWeights(layers);
  const kv = kvFloats(spec, o.maxBatch);
  const activationFloats = layers.map((_, l) => (l === 0 || l === layers.length - 1 ? 0 : kv));
  return placeStages({
    ranks: probes.map((p) => ({ layerMs: weights.map((w, l) => (l === 0 ? 1e-6 : w * p.msPerWeight)), memoryBytes: p.memoryBytes })),
    stages: probes.length,
    stageOf: probes.map((_, r) => r),
    // Bytes already: one "parameter" a byte.
    parameters: layerBytes(layers, o.bytesOf),
    activationFloats,
    bytesPerParameter: 1,
    liveMicroBatches: 1,
  });
}
