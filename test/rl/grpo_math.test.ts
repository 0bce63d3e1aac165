/**
 * GRPO's pieces on their own, without Python (grpo_loss.test.ts checks them against TRL itself):
 * advantages by hand, the completion batch (cut after the first EOS, padded), the loss's value and
 * its gradient in the log-probabilities against the formula written out in float64 for every loss
 * type, β = 0 and β > 0, with tokens on both sides of both clips, per-token log-probabilities against
 * one row's full forward, and the errors bad input gets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withLogitsToKeep } from '../../src/nn/layers/logits_to_keep.js';
import { createModel, type LlamaSpec } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { groupAdvantages } from '../../src/rl/advantages.js';
import { completionBatch, completionMetrics } from '../../src/rl/completions.js';
import { LOSS_TYPES, type LossType, grpoLoss } from '../../src/rl/grpo_loss.js';
import { tokenLogps } from '../../src/rl/token_logps.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import { logSoftmax } from '../../src/tensor/ops/softmax.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { assertClose } from '../helpers/tensors.js';

describe('groupAdvantages', () => {
  it('group: (r − mean) / (unbiased std + 1e-4) per group; none: r − mean; batch: the std of all', () => {
    const r = [1, 0, 0.5, 2, 2, 2];
    const s1 = Math.sqrt(((1 - 0.5) ** 2 + 0.5 ** 2 + 0) / 2); // 0.5
    const g = groupAdvantages(r, 3, 'group');
    assert.deepEqual(Array.from(g.advantages), [0.5 / (s1 + 1e-4), -0.5 / (s1 + 1e-4), 0, 0, 0, 0].map(Math.fround));
    assert.equal(g.zeroStdFraction, 0.5, 'the second group has std 0');
    assert.deepEqual(Array.from(groupAdvantages(r, 3, 'none').advantages), [0.5, -0.5, 0, 0, 0, 0]);
    const mean = r.reduce((a, b) => a + b) / 6;
    const sb = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / 5);
    const b = groupAdvantages(r, 3, 'batch').advantages;
    assert.ok(Math.abs(b[0] - 0.5 / (sb + 1e-4)) < 1e-6, `batch std: ${b[0]}`);
  });
  it('a NaN reward is left out of its group and gets 0; a group of one has std 0', () => {
    const a = groupAdvantages([3, NaN, 1], 3, 'group').advantages;
    assert.equal(a[1], 0);
    assert.ok(Math.abs(a[0] - 1 / (Math.SQRT2 + 1e-4)) < 1e-6);
    assert.deepEqual(Array.from(groupAdvantages([4, 7], 1, 'group').advantages), [0, 0]);
  });
  it('refuses rewards that do not split into groups, and an unknown scaling', () => {
    assert.throws(() => groupAdvantages([1, 2, 3], 2), /3 rewards do not split into groups of num_generations 2/);
    assert.throws(() => groupAdvantages([1, 2], 0), /num_generations must be a positive integer/);
    assert.throws(() => groupAdvantages([1, 2], 2, 'std' as never), /scale_rewards must be one of group, batch, none/);
  });
});

describe('completionBatch', () => {
  it('cuts each completion after its first EOS, pads with the pad id to the longest, and masks the padding', () => {
    const b = completionBatch([{ prompt: [1], completion: [5, 2, 7, 2] }, { prompt: [1], completion: [6, 6, 6] }, { prompt: [1], completion: [2] }], 2, 0);
    assert.equal(b.width, 3);
    assert.deepEqual(Array.from(b.ids), [5, 2, 0, 6, 6, 6, 2, 0, 0]);
    assert.deepEqual(Array.from(b.mask), [1, 1, 0, 1, 1, 1, 1, 0, 0]);
    assert.deepEqual(b.lengths, [2, 3, 1]);
    assert.deepEqual(b.truncated, [false, true, false]);
    assert.deepEqual(completionMetrics(b), { meanLength: 2, minLength: 1, maxLength: 3, clippedRatio: 1 / 3, meanTerminatedLength: 1.5, minTerminatedLength: 1, maxTerminatedLength: 2 });
  });
  it('refuses no rollouts and an empty prompt', () => {
    assert.throws(() => completionBatch([], 2, 0), /no rollouts/);
    assert.throws(() => completionBatch([{ prompt: [], completion: [3] }], 2, 0), /rollout 0 has an empty prompt/);
  });
});

/** The loss and d loss / d logp, written out in float64 from the formula (grpo_loss.ts's header). */
function reference(lp: number[], old: number[], ref: number[], mask: number[], adv: number[], width: number, o: { lossType: LossType; beta: number; lo: number; hi: number; maxLen: number; is?: number[] }): { loss: number; grad: number[] } {
  const rows = adv.length;
  const lengths = adv.map((_, r) => mask.slice(r * width, (r + 1) * width).reduce((a, b) => a + b, 0));
  const total = lengths.reduce((a, b) => a + b, 0);
  const weight = (i: number): number => {
    const m = mask[i];
    if (o.lossType === 'grpo') return m / Math.max(lengths[Math.floor(i / width)], 1) / rows;
    if (o.lossType === 'dr_grpo') return m / (rows * o.maxLen);
    return m / Math.max(total, 1);
  };
  let loss = 0;
  const grad = lp.map((x, i) => {
    const a = adv[Math.floor(i / width)];
    const r = Math.exp(x - old[i]);
    const c = Math.min(Math.max(r, 1 - o.lo), 1 + o.hi);
    const flows = c === r || r * a <= c * a;
    const w = o.is ? o.is[i] : 1;
    let term = -Math.min(r * a, c * a) * w;
    let g = flows ? -a * r * w : 0;
    if (o.beta > 0) {
      const d = ref[i] - x;
      const kl = Math.exp(d) - d - 1;
      term += o.beta * kl * r;
      g += o.beta * ((1 - Math.exp(d)) * r + kl * r);
    }
    loss += term * weight(i);
    return g * weight(i);
  });
  return { loss, grad };
}

describe('grpoLoss against its formula in float64', () => {
  const rows = 4;
  const width = 5;
  const rng = new Rng(7);
  const lp = Array.from({ length: rows * width }, () => -1 - 2 * rng.uniform());
  const old = lp.map((x) => x + 0.4 * rng.normal());
  const ref = lp.map((x) => x + 0.5 * rng.normal());
  const mask = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0];
  const adv = [0.9, -1.1, 0.3, -0.2];
  for (const lossType of LOSS_TYPES) {
    for (const beta of [0, 0.05]) {
      it(`${lossType}, β = ${beta}, ε 0.2 / 0.28`, async () => {
        const logps = Tensor.from(lp, [rows, width]);
        logps.requiresGrad = true;
        const { loss, metrics } = await grpoLoss(logps, { mask, advantages: adv, oldLogps: old, refLogps: beta > 0 ? ref : null }, { lossType, beta, epsilon: 0.2, epsilonHigh: 0.28, maxCompletionLength: 8 });
        backward(loss);
        const want = reference(lp, old, ref, mask, adv, width, { lossType, beta, lo: 0.2, hi: 0.28, maxLen: 8 });
        assert.ok(Math.abs(loss.item() - want.loss) < 1e-6, `loss ${loss.item()} vs ${want.loss}`);
        const got = Array.from(logps.gradValues()!);
        got.forEach((g, i) => assert.ok(Math.abs(g - want.grad[i]) < 1e-6, `gradient ${i}: ${g} vs ${want.grad[i]}`));
        assert.ok(metrics.clipRatioLowMean > 0 && metrics.clipRatioHighMean > 0, `both clips are exercised: ${JSON.stringify(metrics)}`);
        assert.equal(Number.isNaN(metrics.kl), beta === 0);
      });
    }
  }
  for (const [lossType, beta] of [['dapo', 0.05], ['grpo', 0]] as const) {
    it(`${lossType}, β = ${beta}, with importance weights (truncated IS): the policy term per token times its weight, the KL term not`, async () => {
      const is = lp.map(() => 0.2 + 2.8 * rng.uniform());
      const logps = Tensor.from(lp, [rows, width]);
      logps.requiresGrad = true;
      const { loss } = await grpoLoss(logps, { mask, advantages: adv, oldLogps: old, refLogps: beta > 0 ? ref : null, importanceWeights: is }, { lossType, beta, epsilon: 0.2, epsilonHigh: 0.28 });
      backward(loss);
      const want = reference(lp, old, ref, mask, adv, width, { lossType, beta, lo: 0.2, hi: 0.28, maxLen: 512, is });
      assert.ok(Math.abs(loss.item() - want.loss) < 1e-6, `loss ${loss.item()} vs ${want.loss}`);
      Array.from(logps.gradValues()!).forEach((g, i) => assert.ok(Math.abs(g - want.grad[i]) < 1e-6, `gradient ${i}: ${g} vs ${want.grad[i]}`));
    });
  }
  it('on-policy (no oldLogps): the ratio is 1, the gradient −A·weight', async () => {
    const logps = Tensor.from(lp, [rows, width]);
    logps.requiresGrad = true;
    const { loss } = await grpoLoss(logps, { mask, advantages: adv }, { lossType: 'bnpo' });
    backward(loss);
    assert.ok(Math.abs(loss.item() + mask.reduce((s, m, i) => s + m * adv[Math.floor(i / width)], 0) / 13) < 1e-6);
    Array.from(logps.gradValues()!).forEach((g, i) => assert.ok(Math.abs(g + (mask[i] * adv[Math.floor(i / width)]) / 13) < 1e-7));
  });
  it('refuses inputs of the wrong size, β > 0 without a reference, and unknown settings, naming them', async () => {
    const logps = Tensor.from(lp, [rows, width]);
    await assert.rejects(grpoLoss(logps, { mask: mask.slice(1), advantages: adv }), /mask holds 19 values, expected rows × width = 4 × 5/);
    await assert.rejects(grpoLoss(logps, { mask, advantages: adv.slice(1) }), /3 advantages for 4 rows/);
    await assert.rejects(grpoLoss(logps, { mask, advantages: adv }, { beta: 0.1 }), /beta 0.1 > 0 needs refLogps/);
    await assert.rejects(grpoLoss(logps, { mask, advantages: adv }, { lossType: 'ppo' as never }), /loss_type must be one of grpo, bnpo, dr_grpo, dapo, got "ppo"/);
    await assert.rejects(grpoLoss(logps, { mask, advantages: adv }, { epsilon: 1.5 }), /epsilon must lie in \[0, 1\)/);
    await assert.rejects(grpoLoss(logps, { mask, advantages: adv, oldLogps: old.map((x, i) => (i === 7 ? NaN : x)) }), /oldLogps holds NaN at row 1, position 2/);
    await assert.rejects(grpoLoss(logps, { mask, advantages: [0, Infinity, 0, 0] }), /advantages holds Infinity at row 1/);
    await assert.rejects(grpoLoss(Tensor.from(lp, [20]), { mask, advantages: adv }), /logps must be \[rows, width\]/);
  });
});

describe('tokenLogps', () => {
  const spec: LlamaSpec = {
    type: 'llama', modelType: 'llama', vocabSize: 23, context: 32, layers: 1, width: 16, intermediate: 24, heads: 2, kvHeads: 1, headDim: 8,
    ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
  };
  it('equals log_softmax(logits / T) of one row\'s own forward at the shifted positions, whatever the other rows\' prompt lengths', () => {
    const model = createModel(spec, 3);
    model.train(false);
    const rollouts = [{ prompt: [1, 4, 5], completion: [6, 2, 9] }, { prompt: [1, 4, 5], completion: [7, 8, 10] }, { prompt: [3, 11], completion: [12, 13] }];
    const batch = completionBatch(rollouts, 2, 0);
    const { logps, entropies } = noGrad(() => tokenLogps(model, rollouts.map((r) => r.prompt), batch, 0.5));
    assert.deepEqual(logps.shape, [3, 3]);
    const got = Array.from(logps.values());
    const ent = Array.from(entropies.values());
    rollouts.forEach((r, row) => {
      const kept = Array.from(batch.ids.subarray(row * 3, row * 3 + 3));
      const ids = [...r.prompt, ...kept];
      const logits = noGrad(() => model.forward(Tensor.from(ids, [1, ids.length], 'int32')));
      const lsm = Array.from(noGrad(() => logSoftmax(Tensor.from(Array.from(logits.values()).map((v) => v / 0.5), [ids.length, 23]))).values());
      kept.forEach((token, t) => {
        const pos = r.prompt.length - 1 + t;
        assert.ok(Math.abs(got[row * 3 + t] - lsm[pos * 23 + token]) < 1e-5, `row ${row} token ${t}: ${got[row * 3 + t]} vs ${lsm[pos * 23 + token]}`);
        const h = -lsm.slice(pos * 23, pos * 23 + 23).reduce((s, l) => s + Math.exp(l) * l, 0);
        assert.ok(Math.abs(ent[row * 3 + t] - h) < 1e-5, `entropy row ${row} token ${t}`);
      });
    });
  });
  it('keeps the head to the completion\'s positions (logits_to_keep), and takes every position from a model whose head does not', () => {
    const model = createModel(spec, 3);
    model.train(false);
    const rollouts = [{ prompt: [1, 4, 5, 2], completion: [6, 2, 9] }, { prompt: [3, 11], completion: [12, 13] }];
    const batch = completionBatch(rollouts, 22, 0);
    const heads: number[] = [];
    const seen = { firstParameter: () => model.firstParameter(), forward: (ids: Tensor): Tensor => {
      const logits = model.forward(ids);
      heads.push(logits.shape[1]);
      return logits;
    } } as unknown as Module;
    const every = { firstParameter: () => model.firstParameter(), forward: (ids: Tensor): Tensor => withLogitsToKeep(ids.shape[1], () => model.forward(ids)) } as unknown as Module;
    const kept = Array.from(noGrad(() => tokenLogps(seen, rollouts.map((r) => r.prompt), batch)).logps.values());
    assert.deepEqual(heads, [3, 3], 'the completion\'s width in positions a row: the prompt\'s others skipped');
    assertClose(kept, Array.from(noGrad(() => tokenLogps(every, rollouts.map((r) => r.prompt), batch)).logps.values()), { atol: 1e-5, rtol: 0 });
  });
  it('refuses a token outside the vocabulary, prompts that do not match the rows, and a temperature ≤ 0', () => {
    const model = createModel(spec, 3);
    const batch = completionBatch([{ prompt: [1], completion: [40] }], 2, 0);
    assert.throws(() => tokenLogps(model, [[1]], batch), /completion 0 has token 40 outside the vocabulary \[0, 23\)/);
    assert.throws(() => tokenLogps(model, [[1], [1]], batch), /2 prompts for 1 completions/);
    assert.throws(() => tokenLogps(model, [[1]], batch, 0), /temperature must be > 0/);
  });
});
