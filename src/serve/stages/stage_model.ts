/**
 * One pipeline stage of a causal language model for generation: the layers [from, to) of its layer
 * list (nn/layer_list.ts), holding only those layers' weights. The whole model is built deferred
 * (tensor/deferred_init.ts: its parameters are recipes that hold no memory), the stage's
 * layers are kept, and only their parameters get values (parallel/pipeline/stage_values.ts) — read by name from the
 * weights file (a Hugging Face folder, a safetensors file or smolcluster's model file, by ranges; a
 * GGUF file, by llama.cpp's names), or made from the seed's recipes exactly as a whole build makes
 * them; an adapter's update is merged into the stage's adapted weights as they load, and --quantize
 * puts each weight matrix in its format after (one process does the same). A tied weight the stage
 * reads but does not own (GPT-2's head, or Qwen's, reads the token embedding) is held as a copy
 * under the owner's name, in the owner's format: a quantized embedding's copy stays quantized.
 */
import type { ModelLayer } from '../../nn/layer_list.js';
import { modelLayers } from '../../nn/layer_list.js';
import type { ModelSpec } from '../../nn/models/index.js';
import { PipelineStageModule, deferredModel } from '../../parallel/pipeline/stage_model.js';
import { isDeferred } from '../../tensor/deferred_init.js';
import { openStageValues } from '../../parallel/pipeline/stage_values.js';
import { type StageWeights, heldFormats } from '../../parallel/pipeline/stage_weights.js';

export type { StageWeights } from '../../parallel/pipeline/stage_weights.js';

/** A training stage's layers (parallel/pipeline/stage_model.ts) whose tied weight stays the deferred tensor until loadStage gives it values. */
export class GenerationStage extends PipelineStageModule {
  constructor(all: readonly ModelLayer[], from: number, end: number, layerCount = all.length) {
    super(all, from, end, layerCount, (tensor) => tensor);
  }
}

/** The model's layer list, built deferred: nothing holds memory until a stage gives its layers values. */
export function deferredLayers(spec: ModelSpec, seed: number): ModelLayer[] {
  return modelLayers(deferredModel(spec, seed), spec.type);
}

/**
 * Stage [from, to) of the model `spec` describes, its parameters (and only they) given values from
 * `weights` on the host, each in the format it is held in (parallel/pipeline/stage_weights.ts: quantized ones frozen).
 */
export function loadStage(spec: ModelSpec, from: number, to: number, weights: StageWeights): GenerationStage {
  const whole = deferredModel(spec, 'seed' in weights ? weights.seed : null);
  const stage = new GenerationStage(modelLayers(whole, spec.type), from, to);
  const formats = heldFormats(spec, whole, weights);
  const values = openStageValues(spec, whole, weights);
  try {
    for (const [name, p] of stage.namedParameters()) if (isDeferred(p.storage)) values.hold(name, p, formats.get(name));
  } finally {
    values.close();
  }
  stage.eval();
  return stage;
}
