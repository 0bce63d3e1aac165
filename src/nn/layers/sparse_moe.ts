import { embedding } from '../../tensor/ops/embedding.js';
import { div, mul } from '../../tensor/ops/elementwise.js';
import { concat, reshape } from '../../tensor/ops/layout.js';
import { sum } from '../../tensor/ops/reduce.js';
import { softmax } from '../../tensor/ops/softmax.js';
import { siluMul } from '../../tensor/ops/swiglu.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { Module } from '../module.js';
import type { Dropout } from './activation.js';
import { Linear } from './linear.js';
import { Sequential } from './sequential.js';
import { expertParallelForward } from './expert_parallel_moe.js';
import type { MaybeAsync } from './maybe_async.js';
import type { GroupExchanger } from '../../tensor/group_exchange.js';

/**
 * A sparse mixture of experts (Shazeer et al. 2017; Mixtral, Jiang et al. 2024; Hugging Face's
 * MixtralSparseMoeBlock): a router (`gate`, a bias-free Linear to one logit per expert) picks the
 * top k experts of each token by softmax probability, renormalises their k probabilities to sum to
 * 1, and the token's output is the weighted sum of those experts' SwiGLU MLPs
 * (`experts.{i}.w2(silu(w1 x) · w3 x)`, the names of Mixtral's checkpoints). Only the tokens routed
 * to an expert pass through it.
 *
 * The routing (which experts) is read on the host and is not differentiated; the weights are, so
 * the router learns from the language-model loss through them, and from the load-balancing loss
 * (router_loss.ts) through the probabilities each forward leaves in `lastRouting`.
 */
export interface MoeSpec {
  /** num_local_experts */
  experts: number;
  /** num_experts_per_tok: k of the top-k routing. */
  topK: number;
  /** router_aux_loss_coef: the load-balancing loss's weight in the training loss. */
  auxLossCoef: number;
}

/** One forward's routing, for the load-balancing loss: each row's softmax over experts and the top-k choices counted. */
export interface Routing {
  /** [rows, experts], in the graph. */
  probs: Tensor;
  /** How many of the rows' top-k slots each expert took. */
  counts: Float64Array;
  rows: number;
}

/** Mixtral's expert: the SwiGLU MLP with w1 (gate), w3 (up) and w2 (down), no biases. */
class MixtralExpert extends Module {
  private readonly w1: Linear;
  private readonly w2: Linear;
  private readonly w3: Linear;

  constructor(width: number, intermediate: number, rng: Rng) {
    super();
    this.w1 = this.registerModule('w1', new Linear(width, intermediate, rng, { bias: false }));
    this.w2 = this.registerModule('w2', new Linear(intermediate, width, rng, { bias: false }));
    this.w3 = this.registerModule('w3', new Linear(width, intermediate, rng, { bias: false }));
  }

  forward(x: Tensor): Tensor {
    return this.w2.forward(siluMul(this.w1.forward(x), this.w3.forward(x)));
  }
}

/** Which experts each row goes to: the top k by probability (ties to the lower index, as torch.topk on distinct values). */
export function topKRouting(probs: ArrayLike<number>, rows: number, experts: number, k: number): Int32Array {
  const chosen = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const base = r * experts;
    for (let slot = 0; slot < k; slot++) {
      let best = -1;
      for (let e = 0; e < experts; e++) {
        if (chosen.subarray(r * k, r * k + slot).includes(e)) continue;
        if (best < 0 || probs[base + e] > probs[base + best]) best = e;
      }
      chosen[r * k + slot] = best;
    }
  }
  return chosen;
}

/**
 * The slots (row · k + choice) each expert takes, in slot order, and for each slot where its
 * output lands in the experts' outputs stacked in expert order: one dispatch and its combine.
 */
export function dispatchPlan(chosen: Int32Array, experts: number): { slotsOf: Int32Array[]; stackedAt: Int32Array } {
  const lists: number[][] = Array.from({ length: experts }, () => []);
  chosen.forEach((e, slot) => lists[e].push(slot));
  const stackedAt = new Int32Array(chosen.length);
  let offset = 0;
  const slotsOf = lists.map((slots) => {
    slots.forEach((slot, j) => (stackedAt[slot] = offset + j));
    offset += slots.length;
    return Int32Array.from(slots);
  });
  return { slotsOf, stackedAt };
}

export class SparseMoeBlock extends Module {
  private readonly gate: Linear;
  private readonly experts: Sequential;
  /** The last forward's routing (the load-balancing loss reads it); null before the first. */
  lastRouting: Routing | null = null;
  /**
   * Expert parallelism (expert_parallel_moe.ts): the group the experts are split over, which `run`
   * then dispatches to (it waits on the exchanges); null: every expert runs here.
   */
  expertGroup: GroupExchanger | null = null;

  constructor(width: number, intermediate: number, readonly moe: MoeSpec, rng: Rng, private readonly drop: Dropout) {
    super();
    if (!Number.isInteger(moe.experts) || moe.experts < 1) throw new Error(`mixtral: num_local_experts must be a positive integer, got ${moe.experts}`);
    if (!Number.isInteger(moe.topK) || moe.topK < 1 || moe.topK > moe.experts) {
      throw new Error(`mixtral: num_experts_per_tok must be an integer in [1, ${moe.experts}] (num_local_experts), got ${moe.topK}`);
    }
    this.gate = this.registerModule('gate', new Linear(width, moe.experts, rng, { bias: false }));
    this.experts = this.registerModule('experts', new Sequential(...Array.from({ length: moe.experts }, () => new MixtralExpert(width, intermediate, rng))));
  }

  /** The experts, by index (expert parallelism runs a rank's own). */
  expert(i: number): Module {
    return this.experts.layers[i];
  }

  /** The block's forward, over its expert group when it has one (then it waits on the all-to-alls). */
  run(x: Tensor): MaybeAsync<Tensor> {
    return this.expertGroup ? expertParallelForward(this, x, this.expertGroup) : this.forward(x);
  }

  forward(x: Tensor): Tensor {
    const r = this.route(x);
    // Each slot (row r, choice j) is entry r·k + j of `chosen`: the expert reads row ⌊slot / k⌋.
    const outputs: Tensor[] = [];
    r.slotsOf.forEach((slots, e) => {
      if (slots.length === 0) return;
      const tokenRows = slots.map((slot) => Math.floor(slot / this.moe.topK));
      outputs.push(this.expert(e).forward(embedding(r.flat, tokenRows, [slots.length])));
    });
    return this.finish(x, concat(outputs, 0), r);
  }

  /** The router's part of a forward: the rows, their top-k experts and weights, and the dispatch plan (records lastRouting). */
  route(x: Tensor): RoutedRows {
    const width = x.shape[x.ndim - 1];
    const rows = x.size / width;
    const { experts, topK } = this.moe;
    const flat = reshape(x, [rows, width]);
    const probs = softmax(this.gate.forward(flat), -1);
    const chosen = topKRouting(probs.values(), rows, experts, topK);
    this.lastRouting = { probs, counts: countChoices(chosen, experts), rows };
    return { flat, rows, width, weights: routingWeights(probs, chosen, rows, experts, topK), ...dispatchPlan(chosen, experts) };
  }

  /** The experts' outputs, stacked in expert order, mixed back into rows of x's shape. */
  finish(x: Tensor, stacked: Tensor, r: RoutedRows): Tensor {
    return this.drop.forward(reshape(combine(stacked, r.stackedAt, r.weights, r.rows, this.moe.topK, r.width), x.shape));
  }
}

/** One forward's routing as the experts' dispatch needs it. */
export interface RoutedRows {
  flat: Tensor;
  rows: number;
  width: number;
  weights: Tensor;
  slotsOf: Int32Array[];
  stackedAt: Int32Array;
}

/** The top-k probabilities of each row renormalised to sum to 1: [rows, k], differentiable. */
export function routingWeights(probs: Tensor, chosen: Int32Array, rows: number, experts: number, k: number): Tensor {
  const cells = Int32Array.from(chosen, (e, slot) => Math.floor(slot / k) * experts + e);
  const picked = reshape(embedding(reshape(probs, [rows * experts, 1]), cells, [rows * k]), [rows, k]);
  return div(picked, sum(picked, 1, true));
}

/** Each row's output: Σ_j weight[row, j] · (its j-th expert's output), read from the stacked outputs. */
export function combine(stacked: Tensor, stackedAt: Int32Array, weights: Tensor, rows: number, k: number, width: number): Tensor {
  const perSlot = reshape(embedding(stacked, stackedAt, [rows * k]), [rows, k, width]);
  return sum(mul(perSlot, reshape(weights, [rows, k, 1])), 1);
}

function countChoices(chosen: Int32Array, experts: number): Float64Array {
  const counts = new Float64Array(experts);
  for (const e of chosen) counts[e]++;
  return counts;
}
