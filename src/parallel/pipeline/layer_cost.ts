/**
 * What each layer of a model costs on this process, measured: a short timed pass of forward and
 * backward through the layer list (nn/layer_list.ts) on one micro-batch, each layer timed on its
 * own (its input a fresh leaf, so its backward stops at it). The placement (stage_plan.ts) cuts the
 * model by these times, gathered from every rank, and by each layer's bytes.
 */
import type { ModelLayer } from '../../nn/layer_list.js';
import { settled } from '../../nn/layers/maybe_async.js';
import { backward } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';

export interface LayerCost {
  /** Mean forward+backward ms of each layer over the timed repeats. */
  ms: number[];
  /** Each layer's parameters (a tied weight it reads counted too: the stage may hold a copy). */
  parameters: number[];
  /** Each layer's output activation, floats per micro-batch. */
  activationFloats: number[];
}

/**
 * Times every layer after one untimed warm-up pass, at least `minRepeats` times and until
 * `budgetMs` have gone (at most `maxRepeats`), and averages them: the mean over a few hundred ms is
 * what the node sustains. (The fastest pass would not do: under a CPU quota of a third, a layer
 * shorter than the quota's slice runs at full speed whenever it starts early in a period.) Parameter gradients
 * are left dirty: the caller zeroes them (the training loop does before every step).
 */
export function measureLayers(layers: readonly ModelLayer[], input: Tensor, o: { minRepeats?: number; maxRepeats?: number; budgetMs?: number } = {}): LayerCost {
  const { minRepeats = 5, maxRepeats = 50, budgetMs = 300 } = o;
  const samples: number[][] = layers.map(() => []);
  let activationFloats = timedPass(layers, input).floats;
  const start = performance.now();
  for (let r = 0; r < maxRepeats && (r < minRepeats || performance.now() - start < budgetMs); r++) {
    const { ms, floats } = timedPass(layers, input);
    activationFloats = floats;
    ms.forEach((t, i) => samples[i].push(t));
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
  return { ms: samples.map((xs) => xs.reduce((a, b) => a + b, 0) / xs.length), parameters, activationFloats };
}

function timedPass(layers: readonly ModelLayer[], input: Tensor): { ms: number[]; floats: number[] } {
  const ms: number[] = [];
  const floats: number[] = [];
  let x = input;
  for (const layer of layers) {
    const t0 = performance.now();
    // The whole model's layers on one rank: none waits on a group.
    const y = settled(layer.forward(x, layer.tied?.tensor), `layer ${layer.name}`);
    // A layer whose parameters are all frozen (LoRA's embedding) has no backward to time.
    if (y.requiresGrad) backward(y, new Float32Array(y.size).fill(1 / y.size));
    ms.push(performance.now() - t0);
    floats.push(y.size);
    // The next layer's input: the values only, a leaf of its own.
    x = Tensor.fromHost(Float32Array.from(y.values() as Float32Array), y.shape, true);
  }
  return { ms, floats };
}
