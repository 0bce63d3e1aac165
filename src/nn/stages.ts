/**
 * A model's forward as a list of stages over its top-level blocks, run one after the other: the
 * same ops in the same order as its forward (same bits), but with a point between blocks where a
 * caller may do asynchronous work — ZeRO-3 gathers each block's parameters just before it runs
 * (src/parallel/zero/). `modules` names (dotted, from the root) the modules whose parameters the
 * stage reads: a tied weight (GPT-2's head reads the token embedding) is named by each stage that
 * reads it.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from './module.js';

export interface ForwardStage {
  /** For errors and reports ("transformer.h.3"). */
  name: string;
  modules: readonly string[];
  run(x: Tensor): Tensor;
}

/** A model that can run its forward in stages. */
export interface StagedModule {
  forwardStages(): ForwardStage[];
}

/** The model's stages, or null when it does not cut its forward into stages. */
export function forwardStagesOf(model: Module): ForwardStage[] | null {
  const staged = model as Partial<StagedModule>;
  return typeof staged.forwardStages === 'function' ? staged.forwardStages() : null;
}
