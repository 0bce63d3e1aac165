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
import { type ModelLayer, modelLayers } from '../../nn/layer_list.js';
import { type MaybeAsync, eachInTurn, settled } from '../../nn/layers/maybe_async.js';
import { Module } from '../../nn/module.js';
import { Tensor } from '../../tensor/tensor.js';

export class PipelineStageModule extends Module {
  private readonly layers: ModelLayer[];
  /** Names of the tied parameters this stage holds a copy of (the owner is on another stage). */
  readonly tiedCopies: string[] = [];
  /** Names of the tied parameters this stage owns and another stage reads (the copy's counterpart). */
  readonly tiedOwned: string[] = [];
  private readonly tiedTensors = new Map<string, Tensor>();

  constructor(all: readonly ModelLayer[], readonly from: number, readonly end: number, readonly layerCount = all.length) {
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
      const copy = Tensor.fromHost(Float32Array.from(tensor.values() as Float32Array), tensor.shape);
      this.tiedTensors.set(name, this.registerParameter(name, copy));
      copy.requiresGrad = tensor.requiresGrad; // a frozen weight's copy is frozen too (LoRA's embedding)
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

  /** The layer names of the stage (the plan's log). */
  layerNames(): string[] {
    return this.layers.map((l) => l.name);
  }

  /** The stage's layers in order; it waits only where a tensor-parallel layer sums over its group. */
  run(x: Tensor): MaybeAsync<Tensor> {
    return eachInTurn(this.layers, x, (layer, y) => layer.forward(y, layer.tied && this.tiedTensors.get(layer.tied.name)));
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'a pipeline stage');
  }
}

/** Stage [from, to) of `model`'s layer list. */
export function buildStage(model: Module, from: number, to: number, modelName?: string): PipelineStageModule {
  return new PipelineStageModule(modelLayers(model, modelName), from, to);
}
