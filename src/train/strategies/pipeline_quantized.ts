/**
 * Pipeline stages over a quantized base (QLoRA over machines): a base that fits no one machine is
 * cut into stages, and each rank holds only its own layers' blocks. The whole model is built
 * deferred (it holds nothing), the run's adapters are put on it, and:
 * - every rank times one transformer block's forward and backward on one micro-batch (the block's
 *   weights read from the base, its adapters on): a layer's time is its weights × the rank's ms per
 *   weight, the embedding a lookup (next to nothing), as generation's stages are placed. Timing
 *   every layer, as a float run does, would read the whole base on every rank;
 * - a layer's bytes are its frozen weights as held (their formats), its trained parameters with
 *   their gradients and optimizer state, and its output per live micro-batch;
 * - then this rank's layers get their values (parallel/pipeline/stage_values.ts): a GGUF file's
 *   blocks as views of the file mapped read-only, an MLX folder's groups regrouped into blocks, a
 *   float file's (or the seed's) values quantized by the --lora-base-dtype plan of the whole model,
 *   so each layer is held as one process holds it.
 */
import { ggufHeaderRead } from '../../nn/interchange/gguf.js';
import { type ModelLayer, modelLayers } from '../../nn/layer_list.js';
import { settled } from '../../nn/layers/maybe_async.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { isQuantScheme } from '../../nn/quantize_model.js';
import { type Placement, placeStages } from '../../parallel/pipeline/placement.js';
import { PipelineStageModule, deferredModel } from '../../parallel/pipeline/stage_model.js';
import { type StageValues, openStageValues } from '../../parallel/pipeline/stage_values.js';
import { type StageWeights, heldBytes, heldFormats, layerBytes, layerWeights } from '../../parallel/pipeline/stage_weights.js';
import { backward } from '../../tensor/autograd.js';
import { isDeferred } from '../../tensor/deferred_init.js';
import type { QuantType } from '../../tensor/quant/formats.js';
import { Tensor } from '../../tensor/tensor.js';
import { ConfigError } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import { initIsGguf, initIsQuantized, initMlxQuantization } from '../run/init_source.js';
import type { ModelBuildContext } from './strategy.js';

/** What one rank measured for the placement: ms of a block's forward+backward per weight, and its memory. */
export interface BlockProbe {
  msPerWeight: number;
  memoryBytes: number;
}

/**
 * Where a quantized base's values come from, or null for a float base (the stages are then cut
 * from the whole model, as before): --init FILE.gguf, or --lora-base-dtype SCHEME over --init's
 * float weights (or the seed's), or an MLX quantized folder.
 */
export function quantizedBaseWeights(run: Pick<ModelBuildContext, 'init' | 'loraBaseDtype'>, seed: number): StageWeights | null {
  const scheme = run.loraBaseDtype !== undefined && isQuantScheme(run.loraBaseDtype) ? run.loraBaseDtype : undefined;
  if (initIsQuantized(run.init)) {
    const what = initIsGguf(run.init) ? 'a GGUF file' : 'an MLX quantized folder';
    if (scheme !== undefined) throw new ConfigError('command line', `--lora-base-dtype ${scheme}`, `the --init model is quantized already (${run.init} is ${what}); leave --lora-base-dtype out`);
    if (initIsGguf(run.init)) return { gguf: ggufHeaderRead(run.init) };
    return { mlx: run.init, quantization: initMlxQuantization(run.init)! };
  }
  if (scheme === undefined) return null;
  return run.init !== undefined ? { file: run.init, quantize: scheme } : { seed, quantize: scheme };
}

/** The whole model over a quantized base, built deferred, its adapters on; each stage takes its layers' values from it. */
export class QuantizedBaseStages {
  readonly layers: ModelLayer[];
  private readonly formats: Map<string, QuantType>;
  private readonly values: StageValues;
  /** The probe's block gets copies, not views of the mapped file: a rank whose stage lacks it lets them go. */
  private readonly copies: StageValues;

  constructor(private readonly spec: ModelSpec, weights: StageWeights, modelName: string, prepare?: (model: Module) => void) {
    const whole = deferredModel(spec, 'seed' in weights ? weights.seed : null);
    this.formats = heldFormats(spec, whole, weights);
    // Opened before the adapters go on: the weights know the base's names only.
    this.values = openStageValues(spec, whole, weights, { mapped: true });
    this.copies = openStageValues(spec, whole, weights);
    // Adapters on and the base frozen in the whole model, so each stage's layers carry theirs.
    prepare?.(whole);
    this.layers = modelLayers(whole, modelName);
  }

  /**
   * Times the first transformer block (layer 1)'s forward and backward on `tokens` × `micro` rows of
   * random activations, after one untimed pass, over about `budgetMs`: its median per weight. Its
   * adapters' gradients are dropped after.
   */
  probe(micro: number, tokens: number, memoryBytes: number, budgetMs = 300): BlockProbe {
    const block = this.layers[1];
    for (const [prefix, m] of block.modules) for (const [name, p] of m.namedParameters(`${prefix}.`)) if (isDeferred(p.storage)) this.copies.hold(name, p, this.formats.get(name));
    const width = (this.spec as { width: number }).width;
    const rng = new Rng(1);
    const input = Float32Array.from({ length: micro * tokens * width }, () => rng.normal());
    const pass = (): number => {
      const x = Tensor.fromHost(input, [micro, tokens, width], true);
      const t0 = performance.now();
      const y = settled(block.forward(x), `layer ${block.name}`);
      backward(y, new Float32Array(y.size).fill(1 / y.size));
      return performance.now() - t0;
    };
    pass();
    const times: number[] = [];
    const start = performance.now();
    while (times.length < 3 || (performance.now() - start < budgetMs && times.length < 20)) times.push(pass());
    for (const [, m] of block.modules) for (const p of m.parameters()) p.grad = null;
    times.sort((a, b) => a - b);
    return { msPerWeight: times[Math.floor(times.length / 2)] / layerWeights([block])[0], memoryBytes };
  }

  /**
   * The plan from every rank's probe (rank r holds stage stageOf[r]): each layer's time its weights
   * × the rank's ms per weight, its bytes the base's as held plus `trainedBytes` per trained
   * parameter and its output (`floats` per micro-batch: `tokens` × the width, the head's × the
   * vocabulary) for each live micro-batch.
   */
  place(probes: readonly BlockProbe[], o: { stages: number; stageOf: number[]; trainedBytes: number; micro: number; tokens: number; liveMicroBatches: number }): Placement {
    const held = heldBytes(this.formats);
    const weights = layerWeights(this.layers);
    const { width, vocabSize } = this.spec as { width: number; vocabSize: number };
    const last = this.layers.length - 1;
    return placeStages({
      ranks: probes.map((p) => ({ layerMs: weights.map((w, l) => (l === 0 ? 1e-6 : w * p.msPerWeight)), memoryBytes: p.memoryBytes })),
      stages: o.stages,
      stageOf: o.stageOf,
      // Bytes already: one "parameter" a byte.
      parameters: layerBytes(this.layers, (name, p) => (p.requiresGrad ? p.size * o.trainedBytes : held(name, p))),
      activationFloats: this.layers.map((_, l) => o.micro * o.tokens * (l === last ? vocabSize : width)),
      bytesPerParameter: 1,
      liveMicroBatches: o.liveMicroBatches,
    });
  }

  /** Stage [from, to): its layers' parameters (and only they) given their values; a tied weight it reads is held in its owner's format. */
  stage(from: number, to: number): PipelineStageModule {
    const stage = new PipelineStageModule(this.layers, from, to, this.layers.length, (tensor) => tensor);
    try {
      for (const [name, p] of stage.namedParameters()) if (isDeferred(p.storage)) this.values.hold(name, p, this.formats.get(name));
    } finally {
      this.values.close();
      this.copies.close();
    }
    return stage;
  }
}
