/**
 * One pipeline stage of a causal language model for generation: the layers [from, to) of its layer
 * list (nn/layer_list.ts), holding only those layers' weights. The whole model is built deferred
 * (parallel/zero/deferred_init.ts: its parameters are recipes that hold no memory), the stage's
 * layers are kept, and only their parameters get values — read by name from the weights file (a
 * Hugging Face folder, a safetensors file or smolcluster's model file, by ranges), or made from the
 * seed's recipes exactly as a whole build makes them; an adapter's update is merged into the
 * stage's adapted weights as they load (one process merges the same). A tied weight the stage reads but does not own
 * (GPT-2's head reads the token embedding) is held as a copy under the owner's name.
 */
import type { ModelLayer } from '../../nn/layer_list.js';
import { modelLayers } from '../../nn/layer_list.js';
import { openInitRanges } from '../../nn/interchange/init_ranges.js';
import { AdapterDeltas } from '../../nn/lora/adapter_deltas.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import { PipelineStageModule } from '../../parallel/pipeline/stage_model.js';
import { buildDeferred, deferredValues, isDeferred } from '../../parallel/zero/deferred_init.js';
import { deviceMemory } from '../../tensor/storage.js';

/**
 * Where a stage's weights come from: a file (read by name), with a PEFT adapter folder merged into
 * the stage's own layers as they load (`adapter`), or the seed's initialisation (tests).
 */
export type StageWeights = { file: string; adapter?: string } | { seed: number };

/** A training stage's layers (parallel/pipeline/stage_model.ts) whose tied weight stays the deferred tensor until loadStage gives it values. */
export class GenerationStage extends PipelineStageModule {
  constructor(all: readonly ModelLayer[], from: number, end: number, layerCount = all.length) {
    super(all, from, end, layerCount, (tensor) => tensor);
  }
}

/** The model's layer list, built deferred: nothing holds memory until a stage gives its layers values. */
export function deferredLayers(spec: ModelSpec, seed: number): ModelLayer[] {
  return modelLayers(buildDeferred(() => createModel(spec, seed)), spec.type);
}

/** Stage [from, to) of the model `spec` describes, its parameters (and only they) given values from `weights` on the host. */
export function loadStage(spec: ModelSpec, from: number, to: number, weights: StageWeights): GenerationStage {
  const seed = 'seed' in weights ? weights.seed : 0;
  const whole = buildDeferred(() => createModel(spec, seed));
  const stage = new GenerationStage(modelLayers(whole, spec.type), from, to);
  const ranges = 'file' in weights ? openInitRanges(weights.file, whole, spec) : null;
  const adapter = 'file' in weights && weights.adapter !== undefined ? AdapterDeltas.read(weights.adapter) : null;
  // Every stage checks the adapter against the whole model, so one naming a module no stage holds is refused.
  adapter?.check(new Map(whole.namedParameters().map(([name, p]) => [name, p.shape])));
  try {
    for (const [name, p] of stage.namedParameters()) {
      if (!isDeferred(p.storage)) continue;
      let values = ranges ? ranges.read(name, p.shape, 0, p.size) : deferredValues(p.storage, 0, p.size);
      if (adapter?.adapts(name)) adapter.mergeInto(name, p.shape, (values = Float32Array.from(values)));
      p.bind(deviceMemory('cpu').fromHost(values), null);
    }
  } finally {
    ranges?.close();
  }
  stage.eval();
  return stage;
}
