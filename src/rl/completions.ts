/**
 * Sampled completions as GRPO's loss reads them, the way TRL 1.13 prepares them: each completion is
 * cut after its first EOS (the EOS kept: TRL's `_generate_single_turn` masks "everything after the first
 * EOS token"), then all are right-padded with the pad id to the longest, and the completion mask is 1
 * on the kept tokens, 0 on the padding. Also the completion-length metrics TRL logs.
 */

/** One sampled row: the prompt's token ids and the completion's, as the sampler returned them. */
export interface Rollout {
  prompt: readonly number[];
  completion: readonly number[];
}

export interface CompletionBatch {
  /** Completions (cut after the first EOS, then right-padded): rows × width ids, row-major. */
  ids: Int32Array;
  /** 1 on a completion's kept tokens, 0 on its padding; rows × width. */
  mask: Float32Array;
  rows: number;
  /** The longest kept completion (TRL's logits_to_keep). */
  width: number;
  /** Each completion's kept length. */
  lengths: number[];
  /** Whether a completion ended without an EOS (cut by the length limit: TRL's `is_truncated`). */
  truncated: boolean[];
}

/** The completions of `rollouts` cut after the first `eosId` and padded with `padId`. */
export function completionBatch(rollouts: readonly Rollout[], eosId: number, padId: number): CompletionBatch {
  if (rollouts.length === 0) throw new RangeError('completionBatch: no rollouts');
  const kept = rollouts.map((r, i) => {
    if (r.prompt.length === 0) throw new RangeError(`completionBatch: rollout ${i} has an empty prompt (the first completion token needs a position before it)`);
    const eos = r.completion.indexOf(eosId);
    return eos >= 0 ? r.completion.slice(0, eos + 1) : r.completion.slice();
  });
  const width = Math.max(1, ...kept.map((c) => c.length));
  const ids = new Int32Array(rollouts.length * width).fill(padId);
  const mask = new Float32Array(rollouts.length * width);
  kept.forEach((c, i) => {
    ids.set(c, i * width);
    mask.fill(1, i * width, i * width + c.length);
  });
  const truncated = kept.map((c) => c.length === 0 || (c[c.length - 1] !== eosId && c[c.length - 1] !== padId));
  return { ids, mask, rows: rollouts.length, width, lengths: kept.map((c) => c.length), truncated };
}

/** TRL's `completions/*` metrics: lengths over all completions and over those that ended with an EOS. */
export interface CompletionMetrics {
  meanLength: number;
  minLength: number;
  maxLength: number;
  /** The share cut by the length limit (`completions/clipped_ratio`). */
  clippedRatio: number;
  meanTerminatedLength: number;
  minTerminatedLength: number;
  maxTerminatedLength: number;
}

export function completionMetrics(batch: CompletionBatch): CompletionMetrics {
  const all = batch.lengths;
  const terminated = all.filter((_, i) => !batch.truncated[i]);
  const term = terminated.length > 0 ? terminated : [0]; // TRL's edge case: no terminated sequence
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
  return {
    meanLength: mean(all),
    minLength: Math.min(...all),
    maxLength: Math.max(...all),
    clippedRatio: batch.truncated.filter(Boolean).length / all.length,
    meanTerminatedLength: mean(term),
    minTerminatedLength: Math.min(...term),
    maxTerminatedLength: Math.max(...term),
  };
}
