/**
 * Per-token log-probabilities of sampled completions under a causal language model, as TRL 1.13's
 * `_get_per_token_logps_and_entropies`: the model reads prompt + completion, the logits are shifted
 * by one (position t predicts token t + 1, so the completion's tokens are scored by the logits from
 * the last prompt position to the second-to-last completion position: the head computes those only,
 * and the completion's last token, whose logits would score nothing, is not read), divided by the sampling
 * temperature, log-softmaxed, and the completion's own tokens picked. An autograd expression: the
 * gradient of anything computed from the result reaches the model's parameters (under `noGrad`,
 * the same numbers serve as old or reference log-probabilities). Also each position's entropy, as
 * TRL logs it (detached).
 *
 * Rows are run without padding: consecutive rows whose prompts have one length go through the model
 * as one batch. TRL left-pads prompts and masks the padding; with rotary positions, which only
 * relative positions enter, that computes the same numbers for the real tokens. Rows of one prompt
 * (a group's G completions) run its positions once (shared_prompts.ts).
 */
import { withLogitsToKeep } from '../nn/layers/logits_to_keep.js';
import type { CausalLm } from '../generate/generate.js';
import { noGrad } from '../tensor/autograd.js';
import { embedding } from '../tensor/ops/embedding.js';
import { div, exp, mul, neg } from '../tensor/ops/elementwise.js';
import { concat, reshape, slice } from '../tensor/ops/layout.js';
import { sum } from '../tensor/ops/reduce.js';
import { logSoftmax } from '../tensor/ops/softmax.js';
import { Tensor } from '../tensor/tensor.js';
import type { CompletionBatch } from './completions.js';
import { promptSharing, sharedPromptLogits } from './shared_prompts.js';

export interface TokenLogps {
  /** Shape [rows, width]: log p(token) of each completion position (padding positions included; mask them). */
  logps: Tensor;
  /** Shape [rows, width], detached: the entropy of each position's (temperature-scaled) distribution. */
  entropies: Tensor;
}

/** The completions' per-token log-probabilities under `model` (a causal LM: ids [n, T] → logits [n, T, vocab]). */
export function tokenLogps(model: CausalLm, prompts: readonly (readonly number[])[], batch: CompletionBatch, temperature = 1): TokenLogps {
  if (prompts.length !== batch.rows) throw new RangeError(`tokenLogps: ${prompts.length} prompts for ${batch.rows} completions`);
  if (!(temperature > 0)) throw new RangeError(`tokenLogps: temperature must be > 0, got ${temperature}`);
  const parts = samePromptLengthRuns(prompts).map(([start, end]) => runLogps(model, prompts.slice(start, end), batch, start, temperature));
  const join = (ts: Tensor[]): Tensor => (ts.length === 1 ? ts[0] : concat(ts, 0));
  return { logps: join(parts.map((p) => p.logps)), entropies: join(parts.map((p) => p.entropies)) };
}

/** [start, end) runs of consecutive rows whose prompts have the same length. */
function samePromptLengthRuns(prompts: readonly (readonly number[])[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < prompts.length; i++) {
    if (i > 0 && prompts[i].length === prompts[i - 1].length) runs[runs.length - 1][1] = i + 1;
    else runs.push([i, i + 1]);
  }
  return runs;
}

function runLogps(model: CausalLm, prompts: readonly (readonly number[])[], batch: CompletionBatch, first: number, temperature: number): TokenLogps {
  const n = prompts.length;
  const p = prompts[0].length;
  const c = batch.width;
  const completion = (i: number): Int32Array => batch.ids.subarray((first + i) * c, (first + i + 1) * c - 1);
  const sharing = promptSharing(prompts);
  if (sharing) {
    const suffix = new Int32Array(n * c);
    prompts.forEach((prompt, i) => {
      suffix[i * c] = prompt[p - 1];
      suffix.set(completion(i), i * c + 1);
    });
    const logits = sharedPromptLogits(model, sharing, suffix, c);
    if (logits) return scored(logits, n, c, batch, first, temperature);
  }
  // Position t's logits score token t + 1: the completion's c tokens are scored from positions p − 1 … p + c − 2,
  // so the model reads every token but the completion's last (whose logits would score nothing), and its head
  // keeps the last c positions (TRL's logits_to_keep, which reads the last token too and drops its logits).
  const T = p + c - 1;
  const ids = new Int32Array(n * T);
  prompts.forEach((prompt, i) => {
    ids.set(prompt, i * T);
    ids.set(completion(i), i * T + p);
  });
  const logits = withLogitsToKeep(c, () => model.forward(Tensor.from(ids, [n, T], 'int32', model.firstParameter()?.device)));
  if (logits.ndim !== 3 || (logits.shape[1] !== c && logits.shape[1] !== T)) throw new Error(`tokenLogps: the model gave logits of shape [${logits.shape.join(', ')}] for ids [${n}, ${T}]`);
  // A model whose head does not read the scope gives every position.
  return scored(logits.shape[1] === c ? logits : slice(logits, 1, T - c, T), n, c, batch, first, temperature);
}

/** The completions' log-probabilities and entropies from the logits [n, c, vocab] that score them. */
function scored(scores: Tensor, n: number, c: number, batch: CompletionBatch, first: number, temperature: number): TokenLogps {
  const vocab = scores.shape[2];
  // x / 1 is x: no copy of a step's logits (and of their gradient) at temperature 1.
  const scaled = temperature === 1 ? scores : div(scores, temperature);
  const lsm = logSoftmax(reshape(scaled, [n * c, vocab]));
  const picks = new Int32Array(n * c);
  for (let r = 0; r < n * c; r++) {
    const token = batch.ids[first * c + r];
    if (token < 0 || token >= vocab) throw new RangeError(`tokenLogps: completion ${first + Math.floor(r / c)} has token ${token} outside the vocabulary [0, ${vocab})`);
    picks[r] = r * vocab + token;
  }
  // A gather of one element per row: the log-softmax as a table of one-wide rows, looked up (its backward scatters into them).
  const logps = reshape(embedding(reshape(lsm, [n * c * vocab, 1]), picks), [n, c]);
  const entropies = noGrad(() => {
    const plain = lsm.detach();
    return reshape(neg(sum(mul(exp(plain), plain), -1)), [n, c]);
  });
  return { logps, entropies };
}
