/**
 * GRPO's loss over per-token log-probabilities, as TRL 1.13's `GRPOTrainer._compute_loss` computes it
 * (importance_sampling_level "token", no vLLM correction, no entropy mask or bonus):
 *
 *   ratio    = exp(logp − old)                   old = logp detached when on-policy (μ = 1)
 *   kl        = exp(ref − logp) − (ref − logp) − 1, × ratio (use_bias_correction_kl, TRL's default: the
 *               ratio is differentiable, so this changes the gradient even on-policy, where it is 1)
 *   per-token = −min(ratio·A, clamp(ratio, 1 − ε_low, 1 + ε_high)·A)  [+ β·kl]
 *   grpo     : mean over each sequence's tokens, then over the batch
 *   bnpo     : sum over the batch's tokens / their number
 *   dr_grpo  : sum over the batch's tokens / (rows × max_completion_length)
 *   dapo     : sum over the batch's tokens / the generation batch's tokens (TRL's num_items_in_batch)
 *
 * An autograd expression in `logp` (from token_logps.ts): its gradient reaches the policy. Which
 * side of the min and the clamp is taken is decided on the host from the ratio's values (as a mask:
 * constant in the backward, as torch's min and clamp are), so only elementwise ops and a sum enter.
 * Also the metrics TRL logs: clip ratios (low, high, region; their per-sequence min / max), the KL's
 * and the entropy's masked means.
 */
import { exp, add, mul, sub } from '../tensor/ops/elementwise.js';
import { sum } from '../tensor/ops/reduce.js';
import { Tensor } from '../tensor/tensor.js';

export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

export const LOSS_TYPES: readonly LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];

/** GRPOConfig's names where they exist; TRL's defaults. */
export interface GrpoLossOptions {
  /** loss_type: default "dapo". */
  lossType?: LossType;
  /** beta: the KL term's weight; 0 (the default) = no reference. */
  beta?: number;
  /** epsilon: the lower clip (default 0.2). */
  epsilon?: number;
  /** epsilon_high: the upper clip (default = epsilon). */
  epsilonHigh?: number;
  /** use_bias_correction_kl: the KL term times the ratio (default true, as TRL 1.13). */
  useBiasCorrectionKl?: boolean;
  /** max_completion_length: dr_grpo's divisor (default 512). */
  maxCompletionLength?: number;
  /**
   * The token count dapo divides by: TRL's num_items_in_batch / num_processes ×
   * gradient_accumulation_steps / steps_per_generation. Default: this batch's masked tokens (one
   * process, no accumulation).
   */
  dapoTokens?: number;
}

/** What the loss reads besides the policy's log-probabilities. Per-token arrays are rows × width, row-major. */
export interface GrpoLossInputs {
  /** The completion mask (completions.ts). */
  mask: ArrayLike<number>;
  /** One advantage per row (advantages.ts). */
  advantages: ArrayLike<number>;
  /** The sampling policy's log-probabilities (μ > 1, or rollouts from an older policy); omitted = on-policy. */
  oldLogps?: ArrayLike<number> | null;
  /** The frozen reference's log-probabilities; required when beta > 0. */
  refLogps?: ArrayLike<number> | null;
  /** Per-position entropies (token_logps.ts), for the entropy metric. */
  entropies?: ArrayLike<number> | null;
  /**
   * A constant weight per token on the clipped policy term, not on the KL term: TRL's
   * `importance_sampling_ratio` (vLLM's importance sampling in one of its modes: importance.ts), which
   * `_compute_loss` multiplies into per_token_loss before adding β·KL. Omitted: 1.
   */
  importanceWeights?: ArrayLike<number> | null;
}

/** TRL's logged names in comments. */
export interface GrpoMetrics {
  /** clip_ratio/low_mean: masked tokens with ratio < 1 − ε_low and A < 0. */
  clipRatioLowMean: number;
  /** clip_ratio/low_min: the smallest per-sequence share of those. */
  clipRatioLowMin: number;
  /** clip_ratio/high_mean: masked tokens with ratio > 1 + ε_high and A > 0. */
  clipRatioHighMean: number;
  /** clip_ratio/high_max. */
  clipRatioHighMax: number;
  /** clip_ratio/region_mean: either. */
  clipRatioRegionMean: number;
  /** kl: the KL term's masked mean, bias-corrected when it is (NaN when beta is 0: not computed). */
  kl: number;
  /** entropy: the masked mean of the entropies given (NaN when none were). */
  entropy: number;
}

export interface GrpoLoss {
  /** The scalar loss, differentiable in the log-probabilities. */
  loss: Tensor;
  metrics: GrpoMetrics;
}

interface Resolved {
  lossType: LossType;
  beta: number;
  biasCorrectionKl: boolean;
  low: number;
  high: number;
  maxCompletionLength: number;
  dapoTokens?: number;
}

/** The GRPO loss of `logps` ([rows, width], from token_logps.ts) and its metrics. */
export async function grpoLoss(logps: Tensor, inputs: GrpoLossInputs, options: GrpoLossOptions = {}): Promise<GrpoLoss> {
  const o = resolve(options);
  const [rows, width] = checkInputs(logps, inputs, o);
  // On-policy, old is the current values detached: the ratio is exactly 1 and its gradient that of logp.
  const old = inputs.oldLogps ? Float32Array.from(inputs.oldLogps) : Float32Array.from(await logps.read());
  const constant = (values: ArrayLike<number>): Tensor => Tensor.from(values, [rows, width], 'float32', logps.device);
  const ratio = exp(sub(logps, constant(old)));
  const ratios = Float32Array.from(await ratio.read());
  const { slope, rest } = clippedSides(ratios, inputs.advantages, width, o);
  // −min(ratio·A, clamp(ratio)·A) = −(ratio·slope + rest): slope is A where the ratio's side is taken, else 0.
  let perToken = sub(constant(negated(rest)), mul(ratio, constant(slope)));
  if (inputs.importanceWeights) perToken = mul(perToken, constant(inputs.importanceWeights));
  let kl: Tensor | null = null;
  if (o.beta !== 0) {
    const d = sub(constant(inputs.refLogps!), logps);
    kl = sub(sub(exp(d), d), 1);
    if (o.biasCorrectionKl) kl = mul(kl, ratio);
    perToken = add(perToken, mul(kl, o.beta));
  }
  const loss = sum(mul(perToken, constant(aggregationWeights(inputs.mask, rows, width, o))));
  const klValues = kl ? Float32Array.from(await kl.read()) : null;
  return { loss, metrics: metricsOf(ratios, klValues, inputs, rows, width, o) };
}

function resolve(options: GrpoLossOptions): Resolved {
  const lossType = options.lossType ?? 'dapo';
  if (!LOSS_TYPES.includes(lossType)) throw new RangeError(`grpoLoss: loss_type must be one of ${LOSS_TYPES.join(', ')}, got "${lossType}"`);
  const beta = options.beta ?? 0;
  const low = options.epsilon ?? 0.2;
  const high = options.epsilonHigh ?? low;
  const maxCompletionLength = options.maxCompletionLength ?? 512;
  if (!(beta >= 0 && Number.isFinite(beta))) throw new RangeError(`grpoLoss: beta must be a finite number ≥ 0, got ${beta}`);
  if (!(low >= 0 && low < 1)) throw new RangeError(`grpoLoss: epsilon must lie in [0, 1), got ${low}`);
  if (!(high >= 0 && Number.isFinite(high))) throw new RangeError(`grpoLoss: epsilon_high must be a finite number ≥ 0, got ${high}`);
  if (!(Number.isInteger(maxCompletionLength) && maxCompletionLength > 0)) throw new RangeError(`grpoLoss: max_completion_length must be a positive integer, got ${maxCompletionLength}`);
  if (options.dapoTokens !== undefined && !(options.dapoTokens > 0)) throw new RangeError(`grpoLoss: dapoTokens must be > 0, got ${options.dapoTokens}`);
  return { lossType, beta, biasCorrectionKl: options.useBiasCorrectionKl ?? true, low, high, maxCompletionLength, dapoTokens: options.dapoTokens };
}

/** Refuses a NaN or infinite value, naming the array, its row and position. */
function finite(name: string, a: ArrayLike<number> | null | undefined, width: number): void {
  for (let i = 0; a && i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new RangeError(`grpoLoss: ${name} holds ${a[i]} at row ${Math.floor(i / width)}${width > 1 ? `, position ${i % width}` : ''}`);
  }
}

function checkInputs(logps: Tensor, inputs: GrpoLossInputs, o: Resolved): [number, number] {
  if (logps.ndim !== 2) throw new RangeError(`grpoLoss: logps must be [rows, width], got [${logps.shape.join(', ')}]`);
  const [rows, width] = logps.shape;
  const perToken = (name: string, a: ArrayLike<number> | null | undefined): void => {
    if (a && a.length !== rows * width) throw new RangeError(`grpoLoss: ${name} holds ${a.length} values, expected rows × width = ${rows} × ${width}`);
  };
  perToken('mask', inputs.mask);
  perToken('oldLogps', inputs.oldLogps);
  perToken('refLogps', inputs.refLogps);
  perToken('entropies', inputs.entropies);
  perToken('importanceWeights', inputs.importanceWeights);
  finite('oldLogps', inputs.oldLogps, width);
  finite('importanceWeights', inputs.importanceWeights, width);
  finite('refLogps', inputs.refLogps, width);
  finite('advantages', inputs.advantages, 1);
  if (inputs.advantages.length !== rows) throw new RangeError(`grpoLoss: ${inputs.advantages.length} advantages for ${rows} rows`);
  if (o.beta !== 0 && !inputs.refLogps) throw new RangeError(`grpoLoss: beta ${o.beta} > 0 needs refLogps (the reference model's log-probabilities)`);
  return [rows, width];
}

/**
 * Which side of −min(ratio·A, clamp(ratio)·A) each token takes. Inside [1 − ε_low, 1 + ε_high] both
 * sides are ratio·A (torch's min splits the gradient between equal sides and the clamp passes it:
 * together, all of it). Outside, the smaller product wins: ratio·A (slope A) or the clip bound·A
 * (a constant, `rest`). Products compared in float32, as torch compares them.
 */
function clippedSides(ratios: Float32Array, advantages: ArrayLike<number>, width: number, o: Resolved): { slope: Float32Array; rest: Float32Array } {
  const slope = new Float32Array(ratios.length);
  const rest = new Float32Array(ratios.length);
  const lo = Math.fround(1 - o.low);
  const hi = Math.fround(1 + o.high);
  for (let i = 0; i < ratios.length; i++) {
    const a = Math.fround(advantages[Math.floor(i / width)]);
    const r = ratios[i];
    const clamped = Math.min(Math.max(r, lo), hi);
    if (clamped === r || Math.fround(r * a) <= Math.fround(clamped * a)) slope[i] = a;
    else rest[i] = Math.fround(clamped * a);
  }
  return { slope, rest };
}

const negated = (xs: Float32Array): Float32Array => xs.map((x) => -x);

/** Each token's weight in the loss's sum: the mask over the loss type's divisor. */
function aggregationWeights(mask: ArrayLike<number>, rows: number, width: number, o: Resolved): Float32Array {
  const w = Float32Array.from(mask);
  const total = w.reduce((s, m) => s + m, 0);
  if (o.lossType === 'grpo') {
    for (let r = 0; r < rows; r++) {
      const row = w.subarray(r * width, (r + 1) * width);
      const len = Math.max(row.reduce((s, m) => s + m, 0), 1);
      for (let t = 0; t < width; t++) row[t] /= len * rows;
    }
    return w;
  }
  const divisor = o.lossType === 'bnpo' ? Math.max(total, 1) : o.lossType === 'dr_grpo' ? rows * o.maxCompletionLength : Math.max(o.dapoTokens ?? total, 1);
  return w.map((m) => m / divisor);
}

function metricsOf(ratios: Float32Array, kl: Float32Array | null, inputs: GrpoLossInputs, rows: number, width: number, o: Resolved): GrpoMetrics {
  const lo = Math.fround(1 - o.low);
  const hi = Math.fround(1 + o.high);
  const low = new Float32Array(ratios.length);
  const high = new Float32Array(ratios.length);
  const region = new Float32Array(ratios.length);
  for (let i = 0; i < ratios.length; i++) {
    const a = inputs.advantages[Math.floor(i / width)];
    low[i] = ratios[i] < lo && a < 0 ? 1 : 0;
    high[i] = ratios[i] > hi && a > 0 ? 1 : 0;
    region[i] = low[i] || high[i];
  }
  const mask = inputs.mask;
  const seqLow = sequenceMeans(low, mask, rows, width).filter((x) => !Number.isNaN(x));
  const seqHigh = sequenceMeans(high, mask, rows, width).filter((x) => !Number.isNaN(x));
  return {
    clipRatioLowMean: maskedMean(low, mask),
    clipRatioLowMin: seqLow.length > 0 ? Math.min(...seqLow) : NaN,
    clipRatioHighMean: maskedMean(high, mask),
    clipRatioHighMax: seqHigh.length > 0 ? Math.max(...seqHigh) : NaN,
    clipRatioRegionMean: maskedMean(region, mask),
    kl: kl ? maskedMean(kl, mask) : NaN,
    entropy: inputs.entropies ? maskedMean(inputs.entropies, mask) : NaN,
  };
}

/** TRL's global_masked_mean on one process: Σ x·mask / max(Σ mask, 1). */
function maskedMean(x: ArrayLike<number>, mask: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    s += x[i] * mask[i];
    n += mask[i];
  }
  return s / Math.max(n, 1);
}

/** TRL's masked_seq_mean: per row Σ x·mask / Σ mask (NaN for a row with no token). */
function sequenceMeans(x: ArrayLike<number>, mask: ArrayLike<number>, rows: number, width: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    let s = 0;
    let n = 0;
    for (let t = r * width; t < (r + 1) * width; t++) {
      s += x[t] * mask[t];
      n += mask[t];
    }
    return s / n;
  });
}
