/**
 * A group's completions scored with their prompt run once (shared_prompts.ts) against the same rows
 * run whole: the log-probabilities and every parameter's gradient, for a Llama (rotary positions,
 * grouped kv heads) and a GPT-2 (learned positions), and which forwards the model is asked for.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CausalLm } from '../../src/generate/generate.js';
import type { AttentionCache } from '../../src/nn/layers/attention.js';
import { type ModelSpec, createModel } from '../../src/nn/models/index.js';
import { completionBatch } from '../../src/rl/completions.js';
import { promptSharing } from '../../src/rl/shared_prompts.js';
import { tokenLogps } from '../../src/rl/token_logps.js';
import { backward } from '../../src/tensor/autograd.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { mul } from '../../src/tensor/ops/elementwise.js';
import { withComputePrecision } from '../../src/tensor/precision.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/tensors.js';

const LLAMA: ModelSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 29, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: true, qkNorm: false, dropout: 0,
};
const GPT2: ModelSpec = { type: 'gpt2', vocabSize: 29, context: 32, layers: 2, width: 16, heads: 2, dropout: 0 };

/** Two prompts of one length (three completions each, one of them also sampled once more) and one of another. */
const ROLLOUTS = [
  { prompt: [1, 4, 5, 7], completion: [6, 2, 9, 11] },
  { prompt: [1, 4, 5, 7], completion: [8, 3] },
  { prompt: [3, 9, 8, 2], completion: [12, 13, 14, 15] },
  { prompt: [1, 4, 5, 7], completion: [16, 17, 18] },
  { prompt: [3, 9, 8, 2], completion: [19, 2] },
  { prompt: [10, 11], completion: [20, 21, 22] },
  { prompt: [10, 11], completion: [23, 24] },
];

/** The model as a forward that never passes a cache on: tokenLogps then runs every row whole. */
function withoutCaches(model: CausalLm): CausalLm {
  return { firstParameter: () => model.firstParameter(), forward: (ids: Tensor) => model.forward(ids) } as unknown as CausalLm;
}

/** tokenLogps's log-probabilities and each trained parameter's gradient of Σ logp · w (w fixed, mixed signs). */
function scoredWithGradients(model: CausalLm, scoring: CausalLm): { logps: number[]; grads: Map<string, number[]> } {
  const batch = completionBatch(ROLLOUTS, 2, 0);
  model.zeroGrad();
  const { logps } = tokenLogps(scoring, ROLLOUTS.map((r) => r.prompt), batch, 0.7);
  const weights = Tensor.from(Float32Array.from({ length: logps.size }, (_, i) => (i % 3) - 0.8), logps.shape);
  backward(sum(mul(logps, weights)));
  const grads = new Map(model.namedParameters().map(([name, p]): [string, number[]] => [name, Array.from(p.gradValues() ?? new Float32Array(p.size))]));
  return { logps: Array.from(logps.values()), grads };
}

describe('promptSharing', () => {
  it('maps each row to its distinct prompt; null where no two rows share one or a prompt is one token', () => {
    assert.deepEqual(promptSharing([[1, 2], [3, 4], [1, 2]]), { distinct: [[1, 2], [3, 4]], of: [0, 1, 0] });
    assert.equal(promptSharing([[1, 2], [3, 4]]), null);
    assert.equal(promptSharing([[1, 2]]), null);
    assert.equal(promptSharing([[5], [5]]), null);
  });
});

describe('tokenLogps over shared prompts', () => {
  for (const [name, spec] of [['llama', LLAMA], ['gpt2', GPT2]] as const) {
    it(`${name}: the log-probabilities and every gradient equal the rows run whole`, () => {
      const model = createModel(spec, 5) as CausalLm;
      model.train(true);
      const shared = scoredWithGradients(model, model);
      const whole = scoredWithGradients(model, withoutCaches(model));
      assertClose(shared.logps, whole.logps, { atol: 1e-5, rtol: 0 });
      for (const [param, g] of whole.grads) {
        assert.ok(g.some((v) => v !== 0) || param.includes('wpe'), `${param}: a gradient that could not tell the paths apart`);
        assertClose(shared.grads.get(param)!, g, { atol: 1e-5, rtol: 1e-4 });
      }
    });
  }

  it('under bf16 compute precision: the log-probabilities and gradients near the rows run whole (bf16 roundings apart)', () => {
    const model = createModel(LLAMA, 5) as CausalLm;
    model.train(true);
    const [shared, whole] = [model, withoutCaches(model)].map((scoring) => withComputePrecision('bf16', () => scoredWithGradients(model, scoring)));
    // Measured on an AMD EPYC: log-probabilities equal, gradients within 1.9e-3; the prompt's positions
    // one off (a wrong offset) moved them by 3.8e-4 and 1.3e-2.
    assertClose(shared.logps, whole.logps, { atol: 2e-4, rtol: 0 });
    for (const [param, g] of whole.grads) assertClose(shared.grads.get(param)!, g, { atol: 6e-3, rtol: 0 });
  });

  it('runs each distinct prompt but its last token once, then every row from that token on', () => {
    const model = createModel(LLAMA, 5) as CausalLm;
    const seen: string[] = [];
    const counting = {
      firstParameter: () => model.firstParameter(),
      forward: (ids: Tensor, cache?: AttentionCache) => {
        seen.push(`[${ids.shape.join(', ')}] at ${cache ? cache.offsets.join(',') : 'none'}`);
        return model.forward(ids, cache);
      },
    } as unknown as CausalLm;
    tokenLogps(counting, ROLLOUTS.map((r) => r.prompt), completionBatch(ROLLOUTS, 2, 0));
    // The batch is 4 wide; rows 0-4 have prompts of length 4 (two distinct), rows 5-6 one prompt of 2.
    assert.deepEqual(seen, ['[2, 3] at 0,0', '[5, 4] at 3,3,3,3,3', '[1, 1] at 0', '[2, 4] at 1,1']);
  });
});
