import { add, mul } from '../../tensor/ops/elementwise.js';
import { sum } from '../../tensor/ops/reduce.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Routing } from './sparse_moe.js';

/**
 * The load-balancing auxiliary loss of a mixture of experts (Switch Transformer, Fedus et al.
 * 2021, eqs. 4–6), as transformers' `load_balancing_loss_func` computes it over all MoE layers at
 * once: with f_e the share of the top-k slots expert e took and P_e its mean router probability,
 * both over every layer's rows together, loss = E · Σ_e f_e · P_e (E experts). It is smallest
 * when tokens spread evenly. f is counted (not differentiated); P carries the router's gradient.
 */
export function loadBalancingLoss(routings: readonly Routing[], experts: number): Tensor {
  if (routings.length === 0) throw new Error('loadBalancingLoss: no routing recorded (run a forward first)');
  const counts = new Float64Array(experts);
  let rows = 0;
  for (const r of routings) {
    r.counts.forEach((c, e) => (counts[e] += c));
    rows += r.rows;
  }
  const probs = routings[0].probs;
  // E · Σ_e (C_e / R) · (ΣP_e / R): the counted shares fold into one constant per expert.
  const scale = Tensor.from(Array.from(counts, (c) => (experts * c) / (rows * rows)), [experts], probs.dtype, probs.device);
  let probSums = sum(probs, 0);
  for (const r of routings.slice(1)) probSums = add(probSums, sum(r.probs, 0));
  return sum(mul(probSums, scale));
}

/** The auxiliary loss a forward attached to its output, for the training loss to add (absent: none). */
const attached = new WeakMap<Tensor, Tensor>();

/** Attaches `loss` (already weighted) to `output`: the training loss adds it (train/loop/objective.ts). */
export function attachAuxLoss(output: Tensor, loss: Tensor): Tensor {
  attached.set(output, loss);
  return output;
}

/** The auxiliary loss a model attached to this output of its forward, if any. */
export function auxLossOf(output: Tensor): Tensor | undefined {
  return attached.get(output);
}
