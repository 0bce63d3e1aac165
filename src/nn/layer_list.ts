/**
 * A model as a list of layers, in the order its forward runs them: what a pipeline cuts into stages
 * (src/parallel/pipeline/). Each layer names the modules whose parameters it owns, under their dotted
 * names in the whole model, so a stage built from a range of layers has the whole model's parameter
 * names. A layer may also read a parameter an earlier layer owns (a tied weight: GPT-2's and BERT's
 * LM head reads the token embedding); a stage that holds the reader but not the owner keeps a copy.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from './module.js';
import type { MaybeAsync } from './layers/maybe_async.js';
import { Sequential, runInOrder } from './layers/sequential.js';

export interface ModelLayer {
  /** For the placement plan's log: e.g. "transformer.h.3". */
  name: string;
  /** The modules this layer owns, by their dotted names in the whole model (a shared dropout may appear in several layers). */
  modules: [name: string, module: Module][];
  /** A parameter an earlier layer owns that this one reads: its name in the whole model and its tensor. */
  tied?: { name: string; tensor: Tensor };
  /**
   * The layer's forward; `tied` is the tied parameter (the owner's, or the stage's copy). It waits
   * only where a tensor-parallel layer sums over its group (layers/maybe_async.ts).
   */
  forward(x: Tensor, tied?: Tensor): MaybeAsync<Tensor>;
}

/** A model that can be cut into pipeline stages. */
export interface LayeredModel {
  layerList(): ModelLayer[];
}

/** The layer list of a model: its own (GPT-2, BERT), or a Sequential's children (MLP, CNN). */
export function modelLayers(model: Module, modelName = 'this model'): ModelLayer[] {
  if (typeof (model as Partial<LayeredModel>).layerList === 'function') return (model as unknown as LayeredModel).layerList();
  if (model instanceof Sequential) return sequentialLayers(model);
  throw new Error(`${modelName} has no layer list to cut into pipeline stages (GPT-2, BERT, the MLP and the CNN have)`);
}

/**
 * A Sequential's children as layers: each child with parameters starts a layer, and the children
 * without (activations, pooling, flatten) join the layer before them (leading ones the first).
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
