/**
 * A model as a list of layers, in the order its forward runs them: the one unit that model-scale
 * parallelism cuts by — pipeline stages take ranges of it (src/parallel/pipeline/), ZeRO-3 gathers
 * each layer's parameters just before it runs (src/parallel/zero/), and activation recomputation
 * can re-run one layer's forward. Chained, the layers run forward's ops in forward's order.
 *
 * One grouping rule: a model's top-level blocks (GPT-2: the embeddings, each block, the final norm
 * with the head; BERT likewise), and for a Sequential each child with parameters together with the
 * parameterless children after it. One naming scheme: a layer is named by the Hugging Face names of
 * the modules it owns, joined by '+' ("transformer.wte+wpe", "transformer.h.3", "0+1+2").
 *
 * Each layer names the modules whose parameters it owns, under their dotted names in the whole
 * model, so a stage built from a range of layers has the whole model's parameter names. A layer may
 * also read a parameter an earlier layer owns (a tied weight: GPT-2's and BERT's LM head reads the
 * token embedding); a pipeline stage that holds the reader but not the owner keeps a copy.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { AttentionCache } from './layers/attention.js';
import type { Module } from './module.js';
import { type MaybeAsync, eachInTurn } from './layers/maybe_async.js';
import { Sequential, runInOrder } from './layers/sequential.js';

export interface ModelLayer {
  /** For logs, plans and errors: e.g. "transformer.h.3". */
  name: string;
  /** The modules this layer owns, by their dotted names in the whole model (a shared dropout may appear in several layers). */
  modules: [name: string, module: Module][];
  /** A parameter an earlier layer owns that this one reads: its name in the whole model and its tensor. */
  tied?: { name: string; tensor: Tensor };
  /**
   * The layer's forward; `tied` is the tied parameter (the owner's, or a stage's copy). It waits
   * only where a tensor-parallel layer sums over its group (layers/maybe_async.ts). `cache`
   * (generation across pipeline stages): the KV cache its attention continues, and the positions
   * its embedding starts at.
   */
  forward(x: Tensor, tied?: Tensor, cache?: AttentionCache): MaybeAsync<Tensor>;
}

/** A model that lists its own layers. */
export interface LayeredModel {
  layerList(): ModelLayer[];
}

/**
 * A part of a model that runs a range of layers itself (a pipeline stage: its forward is not a
 * whole model's): activation checkpointing wraps the layers it runs in place.
 */
export interface LayerRunner {
  /** `isModelOutput`: the layer is the whole model's last (its output is the logits). */
  wrapLayers(wrap: (layer: ModelLayer, isModelOutput: boolean) => ModelLayer): void;
}

export function isLayerRunner(model: Module): model is Module & LayerRunner {
  return typeof (model as Partial<LayerRunner>).wrapLayers === 'function';
}

/** The layer list of a model: its own (GPT-2, BERT), a Sequential's children (MLP, CNN), or null (ResNet). */
export function layerListOf(model: Module): ModelLayer[] | null {
  if (typeof (model as Partial<LayeredModel>).layerList === 'function') return (model as unknown as LayeredModel).layerList();
  if (model instanceof Sequential) return sequentialLayers(model);
  return null;
}

/** The layer list of a model, or an error naming it when it has none. */
export function modelLayers(model: Module, modelName = 'this model'): ModelLayer[] {
  const layers = layerListOf(model);
  if (!layers) throw new Error(`${modelName} has no layer list (GPT-2, BERT, the MLP and the CNN have)`);
  return layers;
}

/**
 * A Sequential's children as layers: each child with parameters starts a layer, and the children
 * without (activations, pooling, flatten) join the layer before them (leading ones the first), so
 * a fused pair (layers/fusion.ts: ReLU then pooling) stays inside one layer.
 */
export function sequentialLayers(seq: Sequential, prefix = ''): ModelLayer[] {
  const groups: [string, Module][][] = [];
  seq.layers.forEach((m, i) => {
    const owns = m.namedParameters().length > 0;
    if (owns || groups.length === 0) groups.push([]);
    groups[groups.length - 1].push([`${prefix}${i}`, m]);
  });
  // Leading children without parameters form a group of their own: merge it into the next.
  if (groups.length > 1 && groups[0].every(([, m]) => m.namedParameters().length === 0)) groups.splice(0, 2, [...groups[0], ...groups[1]]);
  return groups.map((modules) => ({
    name: modules.map(([n]) => n).join('+'),
    modules,
    forward: (x: Tensor) => runInOrder(modules.map(([, m]) => m), x),
  }));
}

/** The layers chained, each reading its own tied weight: the model's forward (at once on one rank). */
export function runLayers(layers: readonly ModelLayer[], x: Tensor): MaybeAsync<Tensor> {
  return eachInTurn(layers, x, (layer, y) => layer.forward(y, layer.tied?.tensor));
}
