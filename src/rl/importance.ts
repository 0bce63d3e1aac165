/**
 * Truncated importance sampling for rollouts sampled elsewhere (rollout workers) or by an older
 * policy version (asynchronous GRPO): TRL's vLLM correction in its `token_truncate` mode, and
 * prime-rl's. Per token, ratio = exp(old − sampling) where `old` is the trainer's own forward of the
 * completion before this step's update (tokenLogps under noGrad) and `sampling` the log-probability
 * the worker sampled it with; capped above at `cap` (vllm_importance_sampling_clip_max, TRL's default
 * 3.0); padding and a NaN difference give 1 (TRL's nan_to_num on the masked difference). The result
 * weights the clipped policy term per token (grpo_loss.ts's importanceWeights).
 */

export interface ImportanceWeights {
  weights: Float32Array;
  /** Over the masked tokens, after the cap: TRL's sampling/importance_sampling_ratio/{min,mean,max}. */
  min: number;
  mean: number;
  max: number;
}

export function truncatedImportanceWeights(old: ArrayLike<number>, sampling: ArrayLike<number>, mask: ArrayLike<number>, cap: number): ImportanceWeights {
  if (!(cap > 0)) throw new RangeError(`importance sampling: the cap must be > 0, got ${cap}`);
  if (old.length !== sampling.length || old.length !== mask.length) throw new RangeError(`importance sampling: ${old.length} old, ${sampling.length} sampling log-probabilities and ${mask.length} mask values`);
  const weights = new Float32Array(old.length);
  let [min, max, sum, n] = [Infinity, -Infinity, 0, 0];
  for (let i = 0; i < old.length; i++) {
    const d = (old[i] - sampling[i]) * mask[i];
    weights[i] = Math.min(Math.exp(Number.isNaN(d) ? 0 : d), cap);
    if (mask[i] === 0) continue;
    min = Math.min(min, weights[i]);
    max = Math.max(max, weights[i]);
    sum += weights[i];
    n++;
  }
  return { weights, min: n ? min : NaN, mean: n ? sum / n : NaN, max: n ? max : NaN };
}
