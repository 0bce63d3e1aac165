/**
 * What each layer of a model costs on this process, measured: a short timed pass of forward and
 * backward through the layer list (nn/layer_list.ts) on one micro-batch, each layer timed on its
 * own (its input a fresh leaf, so its backward stops at it). The placement (stage_plan.ts) cuts the
 * model by these times, gathered from every rank, and by each layer's bytes.
 */
import type { ModelLayer } from '../../nn/layer_list.js';
import { backward } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';

export interface LayerCost {
  /** Fastest forward+backward ms of each layer over the timed repeats (the least disturbed by other processes). */
  ms: number[];
  /** Each layer's parameters (a tied weight it reads counted too: the stage may hold a copy). */
  parameters: number[];
  /** Each layer's output activation, floats per micro-batch. */
  activationFloats: number[];
}

/**
 * Times every layer `repeats` times after one untimed warm-up pass. Parameter gradients are left
 * dirty: the caller zeroes them (the training loop does before every step).
 */
export function measureLayers(layers: readonly ModelLayer[], input: Tensor, repeats = 5): LayerCost {
  const samples: number[][] = layers.map(() => []);
  let activationFloats: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const { ms, floats } = timedPass(layers, input);
    activationFloats = floats;
    if (r > 0) ms.forEach((t, i) => samples[i].push(t));
  }
  const seen = new Set<Tensor>();
  const parameters = layers.map((l) => {
    let n = 0;
    for (const [, m] of l.modules) for (const [, p] of m.namedParameters()) if (!seen.has(p)) (seen.add(p), (n += p.size));
    return n;
  });
  layers.forEach((l, i) => {
    if (l.tied) parameters[i] += l.tied.tensor.size;
  });
  return { ms: samples.map((xs) => Math.min(...xs)), parameters, activationFloats };
}

function timedPass(layers: readonly ModelLayer[], input: Tensor): { ms: number[]; floats: number[] } {
  const ms: number[] = [];
  const floats: number[] = [];
  let x = input;
  for (const layer of layers) {
    const t0 = performance.now();
    const y = layer.forward(x, layer.tied?.tensor);
    backward(y, new Float32Array(y.size).fill(1 / y.size));
    ms.push(performance.now() - t0);
    floats.push(y.size);
    // The next layer's input: the values only, a leaf of its own.
    x = Tensor.fromHost(Float32Array.from(y.values() as Float32Array), y.shape, true);
  }
  return { ms, floats };
}
