/**
 * Log-probabilities of chosen tokens under a causal language model, many sequences at a time: what
 * `smolcluster eval` scores files and tasks with. A row is token ids and which of its tokens are
 * scored; token j (j ≥ 1) is scored from the logits at position j − 1, as transformers' shifted
 * labels score it. Rows are right-padded into one forward: causal attention keeps the padding out of
 * every real position, which starts at position 0 as it would alone.
 *
 * A token's log-probability is its logit minus the position's log-sum-exp, summed in float64 here
 * (transformers' log_softmax of the raw logits, before any sampling transform); it is "correct"
 * where it is the position's most likely token (argmax, the lowest id of ties as torch's).
 */
import { noGrad } from '../tensor/autograd.js';
import { setCastCache } from '../tensor/ops/cast_cache.js';
import { type Precision, withComputePrecision } from '../tensor/precision.js';
import { Tensor } from '../tensor/tensor.js';
import { type CausalLm, allLogits } from '../generate/generate.js';
import { weightCasts } from '../generate/inference_forward.js';
import { logSumExp, topIds } from '../generate/logprobs.js';

export interface ScoredRow {
  ids: Int32Array;
  /** 1 where token j is scored (j = 0 never is: nothing predicts it). */
  scored: Uint8Array;
}

/** What one row's scored tokens add up to. */
export interface RowScore {
  /** Sum of the scored tokens' log-probabilities (natural log). */
  logprob: number;
  tokens: number;
  /** Scored tokens that were the most likely one. */
  correct: number;
}

export interface ScoreOptions {
  precision?: Precision;
  /** Rows per forward at most (default 8). */
  batchRows?: number;
  /** Logits (rows × positions × vocabulary) one forward may hold at most (default 2^25: 128 MB of float32). */
  logitBudget?: number;
}

const DEFAULT_BATCH_ROWS = 8;
const DEFAULT_LOGIT_BUDGET = 1 << 25;

/** Every row's score, in order; rows of similar length share a forward. `vocab`: the model's output width. */
export async function scoreRows(model: CausalLm, vocab: number, rows: readonly ScoredRow[], o: ScoreOptions = {}): Promise<RowScore[]> {
  const out = new Array<RowScore>(rows.length);
  const order = rows.map((_, i) => i).sort((a, b) => rows[b].ids.length - rows[a].ids.length);
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < order.length;) {
      const longest = rows[order[start]].ids.length;
      const fit = Math.max(1, Math.floor((o.logitBudget ?? DEFAULT_LOGIT_BUDGET) / (longest * vocab)));
      const batch = order.slice(start, start + Math.min(fit, o.batchRows ?? DEFAULT_BATCH_ROWS));
      const { values, length } = await forwardLogits(model, batch.map((i) => rows[i].ids), o.precision);
      batch.forEach((i, n) => (out[i] = rowScore(rows[i], values, n * length * vocab, vocab)));
      start += batch.length;
    }
  } finally {
    model.train(wasTraining);
  }
  return out;
}

/** One forward of the rows right-padded to the longest: its logits read to the host, widened to float32. */
async function forwardLogits(model: CausalLm, ids: readonly Int32Array[], precision: Precision = 'fp32'): Promise<{ values: Float32Array; length: number }> {
  const length = Math.max(...ids.map((r) => r.length));
  const padded = new Int32Array(ids.length * length);
  ids.forEach((r, n) => padded.set(r, n * length));
  const input = Tensor.from(padded, [ids.length, length], 'int32', model.firstParameter()?.device);
  const before = setCastCache(weightCasts(model, precision));
  try {
    const logits = withComputePrecision(precision, () => noGrad(() => model.forward(input)));
    return { values: await allLogits(logits), length };
  } finally {
    setCastCache(before);
  }
}

/** The scored tokens of one row, from the logits at `offset` (its first position's). */
function rowScore(row: ScoredRow, logits: Float32Array, offset: number, vocab: number): RowScore {
  const score: RowScore = { logprob: 0, tokens: 0, correct: 0 };
  for (let j = 1; j < row.ids.length; j++) {
    if (!row.scored[j]) continue;
    const position = logits.subarray(offset + (j - 1) * vocab, offset + j * vocab);
    score.logprob += position[row.ids[j]] - logSumExp(position);
    score.tokens++;
    if (topIds(position, 1)[0] === row.ids[j]) score.correct++;
  }
  return score;
}
