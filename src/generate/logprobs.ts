/**
 * Log-probabilities of tokens under the model's distribution: log_softmax of a position's raw
 * logits (before the repetition penalty, logit bias, temperature and the warpers: what the model
 * says, not what the sampler drew from; vLLM's default "raw" logprobs), and the most likely tokens
 * there (OpenAI's top_logprobs). Computed in float64 from the float32 logits, as torch's
 * log_softmax of a float32 row is within float32's rounding of it.
 */

/** One token's log-probability at a position. */
export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** A position's token (chosen, or the prompt's next one) with its log-probability, and the `k` most likely tokens there. */
export interface PositionLogprobs extends TokenLogprob {
  /** The most likely tokens, most likely first (ties: the lower id first); empty when none were asked. */
  top: TokenLogprob[];
}

/** log Σ exp(logits): the log_softmax's normaliser, in float64. */
export function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  return max + Math.log(sum);
}

/** The `k` largest logits' ids, largest first (ties by id), without sorting the whole row. */
export function topIds(logits: Float32Array, k: number): number[] {
  const best: number[] = [];
  if (k <= 0) return best;
  const better = (a: number, b: number): boolean => logits[a] > logits[b] || (logits[a] === logits[b] && a < b);
  for (let i = 0; i < logits.length; i++) {
    if (best.length === k && !better(i, best[k - 1])) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && better(i, best[at - 1])) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** `id`'s log-probability in `logits` and the `k` most likely tokens' (k = 0: none). */
export function positionLogprobs(logits: Float32Array, id: number, k: number): PositionLogprobs {
  const norm = logSumExp(logits);
  const of = (i: number): TokenLogprob => ({ id: i, logprob: logits[i] - norm });
  return { ...of(id), top: topIds(logits, k).map(of) };
}
