/**
 * One pipeline stage's part of a model: the layers [from, end) of its layer list (nn/layer_list.ts),
 * as a Module whose parameters keep the whole model's names (so checkpoints, the optimizer's
 * decay rules and a comparison with one process line up). Built from the whole model made from the
 * same seed, so P stages start where one process does; the layers outside the range are dropped.
 *
 * A tied weight (GPT-2's and BERT's LM head reads the token embedding): the stage that holds the
 * reader but not the owner keeps a copy under the owner's name, as Megatron's last stage does. Both
 * copies start equal; the strategy sums their gradients between the two stages each step (the
 * gradient one process gets for the shared tensor), so equal updates keep them equal.
 */
import { type LayerRunner, type ModelLayer, modelLayers } from '../../nn/layer_list.js';
import type { AttentionCache } from '../../nn/layers/attention.js';
import { type MaybeAsync, eachInTurn, settled } from '../../nn/layers/maybe_async.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import { Module } from '../../nn/module.js';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { Tensor } from '../../tensor/tensor.js';

export class PipelineStageModule extends Module implements LayerRunner {
  private layers: ModelLayer[];
  /** Names of the tied parameters this stage holds a copy of (the owner is on another stage). */
  readonly tiedCopies: string[] = [];
  /** Names of the tied parameters this stage owns and another stage reads (the copy's counterpart). */
  readonly tiedOwned: string[] = [];
  private readonly tiedTensors = new Map<string, Tensor>();

  /**
   * `copyTied` makes the copy of a tied weight owned by another stage: by default a copy
   * of its values; generation (serve/stages) keeps the deferred tensor itself and gives it values later.
   */
  constructor(all: readonly ModelLayer[], readonly from: number, readonly end: number, readonly layerCount = all.length, copyTied: (tensor: Tensor) => Tensor = copyOfValues) {
    super();
    if (!(from >= 0 && from < end && end <= all.length)) throw new RangeError(`pipeline stage layers [${from}, ${end}) are not a range of the model's ${all.length} layers`);
    this.layers = all.slice(from, end);
    const registered = new Set<string>();
    for (const layer of this.layers) {
      for (const [name, m] of layer.modules) {
        if (registered.has(name)) continue;
        registered.add(name);
        this.registerModule(name, m);
      }
    }
    const owned = new Map(this.namedParameters());
    for (const layer of this.layers) {
      if (!layer.tied) continue;
      const { name, tensor } = layer.tied;
      if (owned.has(name)) {
        this.tiedTensors.set(name, owned.get(name)!);
        continue;
      }
      const copy = this.registerParameter(name, copyTied(tensor));
      copy.requiresGrad = tensor.requiresGrad; // a frozen weight's copy is frozen too (LoRA's embedding)
      this.tiedTensors.set(name, copy);
      this.tiedCopies.push(name);
    }
    // The tied parameters this stage owns that a later stage reads.
    for (const layer of all.slice(end)) if (layer.tied && owned.has(layer.tied.name)) this.tiedOwned.push(layer.tied.name);
  }

  get isFirst(): boolean {
    return this.from === 0;
  }

  get isLast(): boolean {
    return this.end === this.layerCount;
  }

  /** Activation checkpointing: the stage's layers, each wrapped (nn/activation_checkpointing.ts); training only, since a wrapped layer takes no cache. */
  wrapLayers(wrap: (layer: ModelLayer, isModelOutput: boolean) => ModelLayer): void {
    this.layers = this.layers.map((layer, i, all) => wrap(layer, this.isLast && i === all.length - 1));
  }

  /** The layer names of the stage (the plan's log). */
  layerNames(): string[] {
    return this.layers.map((l) => l.name);
  }

  /** The stage's layers in order, continuing `cache` (generation); it waits only where a tensor-parallel layer sums over its group. */
  run(x: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    return eachInTurn(this.layers, x, (layer, y) => layer.forward(y, layer.tied && this.tiedTensors.get(layer.tied.name), cache));
  }

  forward(x: Tensor, cache?: AttentionCache): Tensor {
    return settled(this.run(x, cache), 'a pipeline stage');
  }
}

/** A copy of a tied weight's values. */
function copyOfValues(tensor: Tensor): Tensor {
  return Tensor.fromHost(Float32Array.from(tensor.values() as Float32Array), tensor.shape);
}

/** Stage [from, to) of `model`'s layer list. */
export function buildStage(model: Module, from: number, to: number, modelName?: string): PipelineStageModule {
  return new PipelineStageModule(modelLayers(model, modelName), from, to);
}

/**
 * The whole model, built deferred: its parameters are recipes that hold no memory. `seed` null: no
 * random recipe (the values come from a file, or only the names and shapes are asked), so the
 * generator is not moved past every weight's draw (minutes for an 8B model).
 */
export function deferredModel(spec: ModelSpec, seed: number | null): Module {
  return buildDeferred(() => (seed === null ? withoutRandomInit(() => createModel(spec, 0)) : createModel(spec, seed)));
}
