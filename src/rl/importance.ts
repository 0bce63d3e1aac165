/**
 * Importance sampling for rollouts sampled elsewhere (rollout workers) or by an older policy version
 * (asynchronous GRPO): TRL's vLLM correction in each of its four modes, and prime-rl's. Per token,
 * the log-ratio is (old − sampling)·mask, where `old` is the trainer's own forward of the completion
 * before this step's update (tokenLogps under noGrad) and `sampling` the log-probability the worker
 * sampled it with; a NaN difference gives 0 (TRL's nan_to_num). Then, as TRL 1.13's
 * `_generate_and_score_completions`:
 *  - granularity: `token_*` takes each token's ratio exp(d); `sequence_*` one ratio a completion,
 *    exp(Σ d over its tokens), given to every position of its row;
 *  - constraint: `*_truncate` clamps the ratio to [min, max]; `*_mask` sets a ratio outside
 *    [min, max] to 0 (its token, or its whole completion, then adds nothing to the policy term).
 * `max` is vllm_importance_sampling_clip_max (TRL's default 3.0), `min` vllm_importance_sampling_clip_min
 * (default none). The result weights the clipped policy term per token (grpo_loss.ts's importanceWeights).
 */

/** TRL's vllm_importance_sampling_mode values. */
export const IMPORTANCE_SAMPLING_MODES = ['token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask'] as const;
export type ImportanceSamplingMode = (typeof IMPORTANCE_SAMPLING_MODES)[number];

export interface ImportanceSampling {
  mode: ImportanceSamplingMode;
  /** Upper bound (TRL's vllm_importance_sampling_clip_max). */
  max: number;
  /** Lower bound (TRL's vllm_importance_sampling_clip_min); absent: none. */
  min?: number;
}

export interface ImportanceWeights {
  /** [rows × width]: the weight of each position (padding included; the loss masks it). */
  weights: Float32Array;
  /**
   * After the constraint, TRL's sampling/importance_sampling_ratio/{min,mean,max}: over the masked
   * tokens in the token modes, over the completions (one ratio each) in the sequence modes.
   */
  min: number;
  mean: number;
  max: number;
}

/** The weights of `rows` completions of `width` positions each (old, sampling and mask are [rows × width]). */
export function importanceWeights(old: ArrayLike<number>, sampling: ArrayLike<number>, mask: ArrayLike<number>, width: number, is: ImportanceSampling): ImportanceWeights {
  checkSettings(is);
  if (old.length !== sampling.length || old.length !== mask.length) throw new RangeError(`importance sampling: ${old.length} old, ${sampling.length} sampling log-probabilities and ${mask.length} mask values`);
  if (!(Number.isInteger(width) && width > 0 && old.length % width === 0)) throw new RangeError(`importance sampling: ${old.length} values are not rows of width ${width}`);
  const logRatio = (i: number): number => {
    const d = (old[i] - sampling[i]) * mask[i];
    return Number.isNaN(d) ? 0 : d;
  };
  const constrain = constraintOf(is);
  const weights = new Float32Array(old.length);
  const kept: number[] = [];
  if (is.mode === 'token_truncate' || is.mode === 'token_mask') {
    for (let i = 0; i < old.length; i++) {
      weights[i] = constrain(Math.exp(logRatio(i)));
      if (mask[i] !== 0) kept.push(weights[i]);
    }
  } else {
    for (let start = 0; start < old.length; start += width) {
      let sum = 0;
      for (let i = start; i < start + width; i++) sum += logRatio(i);
      const ratio = Math.fround(constrain(Math.exp(sum)));
      weights.fill(ratio, start, start + width);
      kept.push(ratio);
    }
  }
  return { weights, ...summary(kept) };
}

function checkSettings(is: ImportanceSampling): void {
  if (!IMPORTANCE_SAMPLING_MODES.includes(is.mode)) throw new RangeError(`importance sampling: mode must be one of ${IMPORTANCE_SAMPLING_MODES.join(', ')}, got ${JSON.stringify(is.mode)}`);
  if (!(is.max > 0)) throw new RangeError(`importance sampling: the upper bound must be > 0, got ${is.max}`);
  if (is.min !== undefined && !(is.min >= 0 && is.min <= is.max)) throw new RangeError(`importance sampling: the lower bound must be in [0, ${is.max}] (the upper bound), got ${is.min}`);
}

/** A ratio clamped to [min, max] (truncate) or zeroed outside it (mask). */
function constraintOf(is: ImportanceSampling): (ratio: number) => number {
  const min = is.min ?? -Infinity;
  if (is.mode.endsWith('_truncate')) return (r) => Math.min(Math.max(r, min), is.max);
  return (r) => (r < min || r > is.max ? 0 : r);
}

function summary(values: readonly number[]): { min: number; mean: number; max: number } {
  if (values.length === 0) return { min: NaN, mean: NaN, max: NaN };
  let [min, max, sum] = [Infinity, -Infinity, 0];
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { min, mean: sum / values.length, max };
}
