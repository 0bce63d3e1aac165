/**
 * Activation checkpointing (Chen et al. 2016, torch.utils.checkpoint): each layer of the model's
 * layer list (layer_list.ts) but the last (the head) runs its forward without building a graph, so
 * only its input is kept; its backward runs the forward again, this time recording, and
 * differentiates that. A step then holds one layer's activations at a time plus each layer's
 * input, instead of all of them.
 *
 * The recomputation replays the layer's random generators (its dropout's masks) from where they
 * stood before the first forward and puts them back afterwards, so the masks, the values and the
 * gradients are bit-identical to a step without checkpointing. Parameters receive their gradients
 * inside the layer's backward in the same order as without (the outer pass visits layers in
 * reverse, the inner pass a layer's ops in reverse), so even a tied weight's sum is the same.
 */
import { backward, isGradEnabled, needsGrad, noGrad, record } from '../tensor/autograd.js';
import { kernelsFor } from '../tensor/dispatch.js';
import type { DeviceBuffer } from '../tensor/storage.js';
import { exactQuantProducts } from '../tensor/ops/quant.js';
import { BufferRecycler } from '../tensor/recycler.js';
import { keptOutput } from '../tensor/layer_recycling.js';
import { Tensor, allocStorage } from '../tensor/tensor.js';
import type { Rng, RngState } from '../util/rng.js';
import { type ModelLayer, isLayerRunner, modelLayers, runLayers } from './layer_list.js';
import type { Module } from './module.js';
import { SparseMoeBlock } from './layers/sparse_moe.js';
import { refusePacking } from './layers/packed_sequences.js';

/** The layer with a forward that keeps no activations and recomputes them in its backward. */
export function checkpointLayer(layer: ModelLayer): ModelLayer {
  return checkpointLayerIn(layer, new BufferRecycler());
}

/** checkpointLayer with the recycler its forward and recomputation run in (one shared by a model's layers). */
function checkpointLayerIn(layer: ModelLayer, scratch: BufferRecycler): ModelLayer {
  const params = uniq(layer.modules.flatMap(([, m]) => m.parameters()));
  const rngs = uniq(layer.modules.flatMap(([, m]) => m.namedRngs().map(([, r]) => r)));
  return { ...layer, forward: (x, tied) => checkpointed(layer, params, rngs, scratch, x, tied) };
}

/**
 * Makes `model.forward(x)` run its layer list with every layer checkpointed while gradients are
 * recorded; evaluation (noGrad) and generation (a cache argument) run the model's own forward.
 * Returns the model. Refuses a model without a layer list, naming it.
 */
export function enableActivationCheckpointing<M extends Module>(model: M, modelName = 'this model'): M {
  // The load-balancing loss reads the router probabilities of the forward, which keeps no graph here.
  if (model.namedModules().some(([, m]) => m instanceof SparseMoeBlock)) throw new Error(`${modelName}: activation checkpointing does not carry a mixture of experts' load-balancing loss yet`);
  // One scratch recycler for every layer: a layer's forward and its recomputation run in it, so what
  // one layer makes is reused by the next and a step holds one layer's activations, not all of them.
  const scratch = new BufferRecycler();
  scratches.set(model, scratch);
  // The model's last layer (the head) runs as it is: its output goes straight to the loss, whose
  // backward comes next, so recomputing it would only hold a second logits-sized buffer and run the
  // head's product twice (Hugging Face's gradient checkpointing leaves lm_head alone too).
  const wrap = (layer: ModelLayer, isModelOutput: boolean): ModelLayer => (isModelOutput ? layer : checkpointLayerIn(layer, scratch));
  // A pipeline stage runs its own layers (and evaluates through them: a checkpointed layer without a graph runs as it is).
  if (isLayerRunner(model)) {
    model.wrapLayers(wrap);
    return model;
  }
  const layers = modelLayers(model, modelName).map((layer, i, all) => wrap(layer, i === all.length - 1));
  const own = model.forward.bind(model);
  model.forward = (x: Tensor, ...rest: unknown[]): Tensor => {
    if (rest.some((r) => r !== undefined) || !isGradEnabled()) return (own as (...a: unknown[]) => Tensor)(x, ...rest);
    refusePacking(x, modelName);
    const y = runLayers(layers, x);
    if (y instanceof Promise) throw new Error(`${modelName}: activation checkpointing runs synchronous layers only (not tensor-parallel ones)`);
    return y;
  };
  return model;
}

const scratches = new WeakMap<Module, BufferRecycler>();

/** The recycler a checkpointed model's layers run in (what a step holds beside its own buffers: tests measure it). */
export function checkpointScratch(model: Module): BufferRecycler | undefined {
  return scratches.get(model);
}

function checkpointed(layer: ModelLayer, params: Tensor[], rngs: Rng[], scratch: BufferRecycler, x: Tensor, tied?: Tensor): Tensor {
  const inputs = tied ? [x, ...params, tied] : [x, ...params];
  if (!needsGrad(...inputs)) return runNow(layer, x, tied);
  const before = rngs.map((r) => r.getState());
  // The forward's products are exact (a quantized base's too): the recomputation must meet the same values.
  const out = keptOutput(scratch, scratch.run(() => exactQuantProducts(() => noGrad(() => runNow(layer, x.detach(), tied)))));
  return record(out, `checkpoint(${layer.name})`, inputs, (gy) => recompute(layer, rngs, scratch, before, x, tied, out, gy), false);
}

/**
 * The layer's backward: its forward again from the same generator states, recorded, then
 * differentiated, all in the scratch recycler (the next layer's backward reuses its buffers). The
 * parameters' gradients land in the arena (or the tied tensor's own); the input's is added to x's
 * before the scratch is run again.
 */
function recompute(layer: ModelLayer, rngs: Rng[], scratch: BufferRecycler, before: RngState[], x: Tensor, tied: Tensor | undefined, out: Tensor, gy: DeviceBuffer): void {
  const input = scratch.run(() => {
    const now = rngs.map((r) => r.getState());
    rngs.forEach((r, i) => r.setState(before[i]));
    const inner = new Tensor(x.storage, x.shape, x.requiresGrad);
    let y: Tensor;
    try {
      y = runNow(layer, inner, tied);
    } finally {
      rngs.forEach((r, i) => r.setState(now[i]));
    }
    if (!y.requiresGrad) return null;
    const seed = allocStorage(out.dtype, out.size, out.device);
    kernelsFor(out).axpy(1, gy, seed.buffer);
    backward(y, seed);
    return inner;
  });
  // The input's gradient, summed inside the layer, reaches x as one contribution (x feeds only this layer).
  if (input && x.requiresGrad && input.grad) kernelsFor(x).axpy(1, input.grad.buffer, x.ensureGrad());
}

function runNow(layer: ModelLayer, x: Tensor, tied?: Tensor): Tensor {
  const y = layer.forward(x, tied);
  if (y instanceof Promise) {
    y.catch(() => undefined);
    throw new Error(`activation checkpointing: layer ${layer.name} waits on a group sum (tensor parallelism is not supported)`);
  }
  return y;
}

function uniq<T>(items: T[]): T[] {
  return [...new Set(items)];
}
