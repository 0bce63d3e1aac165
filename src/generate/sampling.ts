/**
 * Choosing the next token from one row of logits, as Hugging Face's generate does: the repetition
 * penalty first (a logits processor), then greedy argmax, or temperature, top-k, top-p and min-p
 * (the warpers, in that order) and a draw from the softmax with a seeded Rng.
 */
import type { Rng } from '../util/rng.js';

export interface SamplingOptions {
  /** 0 (the default) picks the most likely token (greedy); otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0: off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probabilities sum to at least p (1: off). */
  topP?: number;
  /** Drop tokens less likely than minP × the most likely one's probability (0: off). */
  minP?: number;
  /** CTRL's penalty on tokens already in the sequence: positive logits divided by it, negative multiplied (1: off). */
  repetitionPenalty?: number;
}

/** Refuses options outside their ranges, naming the option. */
export function checkSampling(o: SamplingOptions): void {
  const bad = (name: string, v: number, range: string): never => {
    throw new Error(`sampling: ${name} must be ${range}, got ${v}`);
  };
  if (o.temperature !== undefined && !(o.temperature >= 0)) bad('temperature', o.temperature, '>= 0');
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad('topK', o.topK, 'an integer >= 0');
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad('topP', o.topP, 'in (0, 1]');
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) bad('minP', o.minP, 'in [0, 1]');
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0)) bad('repetitionPenalty', o.repetitionPenalty, '> 0');
}

/** Penalises every token of `seen` once (Hugging Face's RepetitionPenaltyLogitsProcessor), in place. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): Float32Array {
  if (penalty === 1) return logits;
  for (const id of new Set(seen)) {
    const l = logits[id];
    logits[id] = l < 0 ? l * penalty : l / penalty;
  }
  return logits;
}

/** The index of the largest logit (the first of equal ones, as torch's argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** Indices by descending logit (ties by index: a stable order). */
function ranked(logits: Float32Array): number[] {
  return Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
}

/** Masks (−∞) all but the k largest logits, in place. */
export function topK(logits: Float32Array, k: number): Float32Array {
  if (k <= 0 || k >= logits.length) return logits;
  const kth = logits[ranked(logits)[k - 1]];
  for (let i = 0; i < logits.length; i++) if (logits[i] < kth) logits[i] = -Infinity;
  return logits;
}

/** softmax of the logits in float64. */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  const p = Float64Array.from(logits, (l) => Math.exp(l - max));
  const sum = p.reduce((s, x) => s + x, 0);
  return p.map((x) => x / sum);
}

/** Keeps the most likely tokens whose cumulative probability first reaches p (always at least one), in place. */
export function topP(logits: Float32Array, p: number): Float32Array {
  if (p >= 1) return logits;
  const probs = softmax(logits);
  const order = ranked(logits);
  let sum = 0;
  let kept = 0;
  while (kept < order.length && sum < p) sum += probs[order[kept++]];
  for (const i of order.slice(Math.max(kept, 1))) logits[i] = -Infinity;
  return logits;
}

/** Masks tokens whose probability is below minP × the largest one's, in place. */
export function minP(logits: Float32Array, m: number): Float32Array {
  if (m <= 0) return logits;
  const probs = softmax(logits);
  const floor = m * Math.max(...probs);
  for (let i = 0; i < logits.length; i++) if (probs[i] < floor) logits[i] = -Infinity;
  return logits;
}

/** Draws an index with probability softmax(logits). */
export function draw(logits: Float32Array, rng: Rng): number {
  const probs = softmax(logits);
  let u = rng.uniform();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i];
    if (u < 0) return i;
  }
  // Rounding left u a hair above 0: the last token still possible.
  for (let i = probs.length - 1; i >= 0; i--) if (probs[i] > 0) return i;
  return 0;
}

/** The next token after `seen` (prompt and generated ids) from one row of logits (left untouched). */
export function sampleToken(row: Float32Array, seen: readonly number[], o: SamplingOptions, rng: Rng): number {
  const logits = applyRepetitionPenalty(Float32Array.from(row), seen, o.repetitionPenalty ?? 1);
  const temperature = o.temperature ?? 0;
  if (temperature === 0) return argmax(logits);
  for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
  topK(logits, o.topK ?? 0);
  topP(logits, o.topP ?? 1);
  minP(logits, o.minP ?? 0);
  return draw(logits, rng);
}
