/**
 * Where each generation stage's layers go: the training placement (parallel/pipeline/placement.ts,
 * by measured speed and memory), fed with what generation costs. Every rank times one transformer
 * block's decode forward on its own cores (the block built alone from the seed's recipes, so no rank
 * ever holds the whole model) and gives its free memory; a layer's time is its matmul weights × the
 * rank's ms per weight (the embedding is a lookup: next to nothing), and its bytes are its weights
 * as they will be held (a quantized one at its format's bytes: parallel/pipeline/stage_weights.ts) plus its KV cache
 * at the full context for every row (--max-batch). All ranks gather the same table and compute the
 * same plan.
 */
import type { ModelLayer } from '../../nn/layer_list.js';
import type { ModelSpec } from '../../nn/models/index.js';
import { type Placement, placeStages } from '../../parallel/pipeline/placement.js';
import { noGrad } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { type ParameterBytes, layerBytes, layerWeights } from '../../parallel/pipeline/stage_weights.js';
import { loadStage } from './stage_model.js';

export interface RankProbe {
  /** Decode-forward ms per weight of a block on this rank. */
  msPerWeight: number;
  memoryBytes: number;
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
