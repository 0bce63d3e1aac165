/**
 * The sparse mixture of experts (nn/layers/sparse_moe.ts) and its load-balancing loss
 * (router_loss.ts): top-k routing and the dispatch plan on hand-made probabilities, the block's
 * output against a dense loop (each token through its k experts, weighted by its renormalised
 * probabilities), the loss against its formula, on every cpu backend; and a mixtral-tiny
 * training step whose loss carries router_aux_loss_coef × the load-balancing loss.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Dropout } from '../../../src/nn/layers/activation.js';
import { auxLossOf, loadBalancingLoss } from '../../../src/nn/layers/router_loss.js';
import { SparseMoeBlock, dispatchPlan, topKRouting } from '../../../src/nn/layers/sparse_moe.js';
import { createModel, llamaSpec } from '../../../src/nn/models/index.js';
import type { LlamaForCausalLM } from '../../../src/nn/models/llama.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { linear } from '../../../src/tensor/ops/matmul.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

const [WIDTH, INNER] = [8, 12];

function randomInput(rows: number, seed: number): Tensor {
  const rng = new Rng(seed);
  return Tensor.from(Array.from({ length: rows * WIDTH }, () => rng.normal()), [1, rows, WIDTH]);
}

describe('sparse mixture of experts', () => {
  it('top-k routing picks the k largest probabilities in order; the plan stacks slots by expert', () => {
    const probs = [0.1, 0.5, 0.3, 0.1, /* row 1 */ 0.6, 0.05, 0.05, 0.3];
    const chosen = topKRouting(probs, 2, 4, 2);
    assert.deepEqual([...chosen], [1, 2, 0, 3]);
    const { slotsOf, stackedAt } = dispatchPlan(chosen, 4);
    assert.deepEqual(slotsOf.map((s) => [...s]), [[2], [0], [1], [3]]);
    assert.deepEqual([...stackedAt], [1, 2, 0, 3]);
  });

  it('the block equals a dense loop over each token\'s k experts (8 experts, top 2, 9 tokens)', () => {
    const moe = { experts: 8, topK: 2, auxLossCoef: 0.01 };
    const block = new SparseMoeBlock(WIDTH, INNER, moe, new Rng(3), new Dropout(0, new Rng(4)));
    const gate = block.namedParameters().find(([n]) => n === 'gate.weight')![1];
    const x = randomInput(9, 5);
    const out = noGrad(() => block.forward(x)).values();
    for (let r = 0; r < 9; r++) {
      const row = Tensor.from(x.values().slice(r * WIDTH, (r + 1) * WIDTH), [1, WIDTH]);
      const logits = Array.from(noGrad(() => linear(row, gate, null)).values());
      const top = Math.max(...logits);
      const exp = logits.map((l) => Math.exp(l - top));
      const probs = exp.map((e) => e / exp.reduce((a, b) => a + b, 0));
      const order = probs.map((p, e) => [p, e]).sort((a, b) => b[0] - a[0]).slice(0, 2);
      const norm = order[0][0] + order[1][0];
      const want = new Float64Array(WIDTH);
      for (const [p, e] of order) {
        const y = noGrad(() => block.expert(e).forward(row)).values();
        for (let d = 0; d < WIDTH; d++) want[d] += (p / norm) * y[d];
      }
      for (let d = 0; d < WIDTH; d++) assert.ok(Math.abs(out[r * WIDTH + d] - want[d]) < 1e-5, `row ${r} dim ${d}: ${out[r * WIDTH + d]} vs ${want[d]}`);
    }
  });

  it('the load-balancing loss is E · Σ_e f_e · P_e over every layer\'s rows, and its gradient reaches the router', () => {
    const moe = { experts: 4, topK: 1, auxLossCoef: 0.01 };
    const blocks = [1, 2].map((s) => new SparseMoeBlock(WIDTH, INNER, moe, new Rng(s), new Dropout(0, new Rng(9))));
    blocks.forEach((b, i) => b.forward(randomInput(6, 10 + i)));
    const routings = blocks.map((b) => b.lastRouting!);
    const f = new Float64Array(4);
    const P = new Float64Array(4);
    for (const r of routings) {
      r.counts.forEach((c, e) => (f[e] += c / 12));
      const p = r.probs.values();
      for (let i = 0; i < p.length; i++) P[i % 4] += p[i] / 12;
    }
    const want = 4 * f.reduce((s, fe, e) => s + fe * P[e], 0);
    const loss = loadBalancingLoss(routings, 4);
    assert.ok(Math.abs(loss.item() - want) < 1e-6, `${loss.item()} vs ${want}`);
    assert.equal(loss.requiresGrad, true);
  });
});

describe('mixtral-tiny', () => {
  it('a training forward attaches router_aux_loss_coef × the load-balancing loss to its logits; evaluation attaches none', () => {
    const model = createModel(llamaSpec('mixtral-tiny', 32, 8), 1) as LlamaForCausalLM;
    const ids = Tensor.from(Array.from({ length: 16 }, (_, i) => (i * 7) % 32), [2, 8]);
    const logits = model.forward(ids);
    const aux = auxLossOf(logits);
    assert.ok(aux);
    assert.ok(Math.abs(aux.item() - 0.02 * model.routerAuxLoss()!.item()) < 1e-6 * aux.item());
    assert.equal(auxLossOf(noGrad(() => model.forward(ids))), undefined);
  });
});
