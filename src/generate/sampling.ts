/**
 * Choosing the next token from one row of logits, as Hugging Face's generate does: the logits
 * processors first — OpenAI's logit bias, the repetition penalty, OpenAI's presence and frequency
 * penalties (vLLM's order) — then greedy argmax, or temperature, top-k, top-p and min-p (the warpers,
 * in that order) and a draw from the softmax with a seeded Rng.
 */
import { cpuHostKernels } from '../tensor/cpu_host_kernels.js';
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
  /** OpenAI's: subtracted once from the logit of every token generated so far (0: off; −2..2 as OpenAI takes). */
  presencePenalty?: number;
  /** OpenAI's: subtracted from a token's logit once per time it was generated so far (0: off). */
  frequencyPenalty?: number;
  /** OpenAI's logit_bias: [token id, bias] pairs added to those logits before anything else (−100 bans a token in practice). */
  logitBias?: ReadonlyArray<readonly [number, number]>;
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
  if (o.presencePenalty !== undefined && !Number.isFinite(o.presencePenalty)) bad('presencePenalty', o.presencePenalty, 'a finite number');
  if (o.frequencyPenalty !== undefined && !Number.isFinite(o.frequencyPenalty)) bad('frequencyPenalty', o.frequencyPenalty, 'a finite number');
  for (const [id, bias] of o.logitBias ?? []) {
    if (!(Number.isInteger(id) && id >= 0)) bad('logitBias token id', id, 'an integer >= 0');
    if (!Number.isFinite(bias)) bad(`logitBias[${id}]`, bias, 'a finite number');
  }
}

/** Adds each [id, bias] of `bias` to its logit (ids beyond the row are skipped: the caller checks them against the vocabulary), in place. */
export function applyLogitBias(logits: Float32Array, bias: ReadonlyArray<readonly [number, number]>): Float32Array {
  for (const [id, b] of bias) if (id < logits.length) logits[id] += b;
  return logits;
}

/**
 * OpenAI's presence and frequency penalties over the tokens `generated` so far (the prompt's are
 * not counted, as vLLM and OpenAI's description): logit −= frequency × count + presence × (count > 0), in place.
 */
export function applyPresenceFrequency(logits: Float32Array, generated: readonly number[], presence: number, frequency: number): Float32Array {
  if (presence === 0 && frequency === 0) return logits;
  const counts = new Map<number, number>();
  for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, count] of counts) logits[id] -= frequency * count + presence;
  return logits;
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

/** Rows from this length take the cpu kernels' rowArgmax where they have one (a call costs what ~1,000 values of the loop do). */
const NATIVE_ARGMAX_FROM = 4096;

/** The index of the largest logit (the first of equal ones, as torch's argmax; a NaN is never taken unless it is the first). */
export function argmax(logits: Float32Array): number {
  // A vocabulary's row on the native backend's vector scans (src/native/row_argmax.cc: 5 µs for SmolLM2's 49,152 logits, 76-95 in the loop below).
  const rowArgmax = logits.length >= NATIVE_ARGMAX_FROM ? cpuHostKernels().rowArgmax : undefined;
  if (rowArgmax) return rowArgmax(logits);
  // The best value kept in a local: re-reading logits[best] each step cost SmolLM2's 49,152 logits ~20 % more.
  let best = 0;
  let top = logits[0];
  const n = logits.length;
  for (let i = 1; i < n; i++) {
    if (logits[i] > top) {
      top = logits[i];
      best = i;
    }
  }
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

/**
 * softmax of the logits in float64. Plain indexed loops: the iterator, `from`-with-a-callback,
 * `reduce` and `map` form took about a third of a sampled decode step's CPU time over SmolLM2's
 * 49,152 logits (grpo's rollouts, serve); the arithmetic and its order are the same.
 */
export function softmax(logits: Float32Array): Float64Array {
  const p = new Float64Array(logits.length);
  const sum = expsInto(logits, p);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** exp(l − max) of each logit into `out` (float64), in index order; returns their sum. */
function expsInto(logits: Float32Array, out: Float64Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  return sum;
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

/**
 * Draws an index with probability softmax(logits): the engine's softmax kernel on the cpu (float32
 * probabilities: a vectorised exp in the native backend, where Math.exp over a vocabulary's logits
 * in float64 was a tenth of a batch-8 decode step on the SmolLM2-135M shape, one thread), then one
 * uniform draw against their running sum.
 */
export function draw(logits: Float32Array, rng: Rng): number {
  if (drawScratch.length < logits.length) drawScratch = new Float32Array(logits.length);
  const probs = drawScratch.subarray(0, logits.length);
  cpuHostKernels().softmax(logits, 1, logits.length, probs);
  let u = rng.uniform();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i];
    if (u < 0) return i;
  }
  // Rounding left u a hair above 0: the last token still possible.
  for (let i = probs.length - 1; i >= 0; i--) if (probs[i] > 0) return i;
  return 0;
}

/** draw's probabilities, reused from call to call (a draw runs to its end before the next begins). */
let drawScratch = new Float32Array(0);

/**
 * The next token after `seen` (prompt and generated ids), of which `generated` are the reply's so far
 * (what the presence and frequency penalties count), from one row of logits (left untouched).
 */
export function sampleToken(row: Float32Array, seen: readonly number[], o: SamplingOptions, rng: Rng, generated: readonly number[] = []): number {
  // Greedy with nothing that changes the logits: the row's argmax, without the copy (a 197-608 KB row a token).
  if (isPlainGreedy(o)) return argmax(row);
  if (tokenScratch.length < row.length) tokenScratch = new Float32Array(row.length);
  const logits = tokenScratch.subarray(0, row.length);
  logits.set(row);
  applyLogitBias(logits, o.logitBias ?? []);
  applyRepetitionPenalty(logits, seen, o.repetitionPenalty ?? 1);
  applyPresenceFrequency(logits, generated, o.presencePenalty ?? 0, o.frequencyPenalty ?? 0);
  const temperature = o.temperature ?? 0;
  if (temperature === 0) return argmax(logits);
  if (temperature !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
  topK(logits, o.topK ?? 0);
  topP(logits, o.topP ?? 1);
  minP(logits, o.minP ?? 0);
  return draw(logits, rng);
}

/** Whether sampling under o is the argmax of the row as it is: temperature 0, no bias, no penalty. */
function isPlainGreedy(o: SamplingOptions): boolean {
  return (o.temperature ?? 0) === 0 && (o.logitBias ?? []).length === 0 && (o.repetitionPenalty ?? 1) === 1 &&
    (o.presencePenalty ?? 0) === 0 && (o.frequencyPenalty ?? 0) === 0;
}

/** sampleToken's copy of the row it changes, reused from call to call (nothing it returns holds it). */
let tokenScratch = new Float32Array(0);
