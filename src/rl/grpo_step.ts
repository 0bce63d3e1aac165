/**
 * One GRPO step as TRL's GRPOTrainer takes it (one process): sample G completions of each prompt
 * from the policy, score them with the rewards, turn the rewards into group advantages, then μ
 * times (num_iterations) the loss over the completions, its gradient, clipping (max_grad_norm) and
 * an AdamW step. With μ > 1 the first pass's log-probabilities are the "old" ones every pass's ratio
 * is taken against; with β > 0 the reference's log-probabilities enter the KL term.
 */
import { backward, noGrad } from '../tensor/autograd.js';
import type { CausalLm } from '../generate/generate.js';
import { clipGradNorm } from '../nn/optim/clip.js';
import type { Optimizer } from '../nn/optim/index.js';
import type { Precision } from '../tensor/precision.js';
import { withComputePrecision } from '../tensor/precision.js';
import { type ScaleRewards, groupAdvantages, nanMean, nanStd } from './advantages.js';
import { type CompletionBatch, completionBatch, completionMetrics } from './completions.js';
import { type LossType, grpoLoss } from './grpo_loss.js';
import type { PromptRow } from './prompts.js';
import { type WeightedReward, scoreRewards } from './rewards/combine.js';
import { type RolloutOptions, type SampledBatch, sampleCompletions } from './rollouts.js';
import { tokenLogps } from './token_logps.js';
import { type ImportanceSampling, importanceWeights } from './importance.js';

export interface GrpoSettings {
  generations: number;
  maxCompletionLength: number;
  temperature: number;
  topP?: number;
  topK?: number;
  beta: number;
  epsilon: number;
  epsilonHigh?: number;
  lossType: LossType;
  scaleRewards: ScaleRewards;
  /** μ: optimizer steps on each batch of completions (TRL's num_iterations). */
  iterations: number;
  /** 0: no clipping. */
  maxGradNorm: number;
  precision?: Precision;
  /** Sequences sampled together at most. */
  maxRows?: number;
  /** Seconds a reward may take on one completion. */
  rewardTimeoutMs?: number;
  /**
   * Rollouts from an older policy version or another process (asynchronous GRPO): correct the gap
   * by importance sampling on the rollouts' own log-probabilities, in one of TRL's modes with its
   * bounds (importance.ts). Absent: no correction.
   */
  importanceSampling?: ImportanceSampling;
}

export interface GrpoModels {
  policy: CausalLm;
  /** β > 0 only. */
  reference: CausalLm | null;
  optimizer: Optimizer;
  rewards: readonly WeightedReward[];
  eosIds: readonly number[];
  decode: (ids: number[]) => string;
  /** Where a failed reward is reported (the run goes on). */
  warn?: (message: string) => void;
  /** Samples the step's completions elsewhere (rollout workers, remote/sampler.ts); default: the policy, in this process. */
  sample?: (prompts: readonly (readonly number[])[], o: RolloutOptions) => Promise<SampledBatch & { workers: number }>;
  /** The policy's version: optimizer steps taken so far (rollouts record the version that sampled them). */
  version?: number;
}

/** What a step measured, under TRL's logged names where they exist. */
export interface GrpoStepRecord {
  loss: number;
  reward: number;
  reward_std: number;
  /** Each reward's NaN-skipping mean (rewards/<name>/mean). */
  rewards: Record<string, number>;
  reward_failures: number;
  frac_reward_zero_std: number;
  kl: number | null;
  entropy: number;
  clip_ratio: { low_mean: number; high_mean: number; region_mean: number };
  completions: { mean_length: number; max_length: number; clipped_ratio: number };
  grad_norm: number | null;
  lr: number;
  /** Tokens sampled / seconds sampling; tokens through the loss's forwards and backwards / their seconds. */
  rollout_tokens_per_sec: number;
  train_tokens_per_sec: number;
  rollout_seconds: number;
  train_seconds: number;
  /** The whole step's wall-clock seconds (sampling, rewards, training), and the process's CPU seconds over it (every thread's). */
  step_seconds: number;
  cpu_seconds: number;
  /** Rollout workers that sampled this step (0: the trainer's process). */
  rollout_workers: number;
  /** How many versions behind the policy the step's oldest rollout was (0: on-policy). */
  staleness: number;
  /** The policy version this step trained (optimizer steps before it). */
  policy_version: number;
  /** With importance sampling: the ratios' min, mean and max after the bounds, over the tokens (token modes) or the completions (sequence modes): TRL's sampling/importance_sampling_ratio/*. */
  importance_sampling_ratio: { min: number; mean: number; max: number } | null;
}

/** How a step's completions are sampled: the settings' and the step's seed. */
export function rolloutOptionsOf(eosIds: readonly number[], s: GrpoSettings, seed: number): RolloutOptions {
  return {
    generations: s.generations, maxCompletionLength: s.maxCompletionLength, temperature: s.temperature, topP: s.topP, topK: s.topK,
    eosIds, seed, precision: s.precision, maxRows: s.maxRows,
  };
}

/** One step over `prompts` (each sampled G times); `seed` seeds the step's completions. */
export async function grpoStep(m: GrpoModels, prompts: readonly PromptRow[], s: GrpoSettings, seed: number): Promise<GrpoStepRecord> {
  const [started, cpuStarted] = [performance.now(), process.cpuUsage()];
  const rolloutOptions = rolloutOptionsOf(m.eosIds, s, seed);
  const ids = prompts.map((p) => p.ids);
  const sampled = m.sample ? await m.sample(ids, rolloutOptions) : { ...await sampleCompletions(m.policy, ids, rolloutOptions), workers: 0 };
  const version = m.version ?? 0;
  const staleness = sampled.completions.reduce((most, c) => Math.max(most, version - (c.version ?? version)), 0);
  const ends = new Set(m.eosIds);
  const texts = sampled.completions.map((c) => m.decode(c.ids.filter((id) => !ends.has(id))));
  const scores = await scoreRewards(m.rewards, texts.map((completion, i) => ({ prompt: prompts[sampled.completions[i].prompt].text, completion, row: prompts[sampled.completions[i].prompt].row })), {
    timeoutMs: s.rewardTimeoutMs, warn: m.warn,
  });
  const { advantages, zeroStdFraction } = groupAdvantages(scores.total, s.generations, s.scaleRewards);
  const promptIds = sampled.completions.map((c) => prompts[c.prompt].ids);
  const eos = m.eosIds[0] ?? -1;
  const batch = completionBatch(sampled.completions.map((c, i) => ({ prompt: promptIds[i], completion: c.ids })), eos, Math.max(eos, 0));
  const sampling = s.importanceSampling !== undefined ? samplingLogps(sampled.completions, batch) : null;
  const trained = await optimize(m, s, promptIds, batch, advantages, sampling);
  const lengths = completionMetrics(batch);
  const cpu = process.cpuUsage(cpuStarted);
  return {
    loss: trained.loss, reward: nanMean([...scores.total]), reward_std: nanStd([...scores.total]),
    rewards: Object.fromEntries(Object.entries(scores.perReward).map(([name, values]) => [name, nanMean([...values])])),
    reward_failures: scores.failures.length, frac_reward_zero_std: zeroStdFraction,
    kl: s.beta > 0 ? trained.kl : null, entropy: trained.entropy, clip_ratio: trained.clip,
    completions: { mean_length: lengths.meanLength, max_length: lengths.maxLength, clipped_ratio: lengths.clippedRatio },
    grad_norm: trained.gradNorm, lr: m.optimizer.lr,
    rollout_tokens_per_sec: sampled.seconds > 0 ? sampled.tokens / sampled.seconds : 0, rollout_seconds: sampled.seconds,
    train_tokens_per_sec: trained.seconds > 0 ? (trained.tokens * s.iterations) / trained.seconds : 0, train_seconds: trained.seconds,
    step_seconds: (performance.now() - started) / 1000, cpu_seconds: (cpu.user + cpu.system) / 1e6,
    rollout_workers: sampled.workers, staleness, policy_version: version, importance_sampling_ratio: trained.importance,
  };
}

interface Optimized {
  loss: number;
  kl: number;
  entropy: number;
  clip: GrpoStepRecord['clip_ratio'];
  gradNorm: number | null;
  tokens: number;
  seconds: number;
  importance: GrpoStepRecord['importance_sampling_ratio'];
}

/** The rollouts' own log-probabilities laid out as the batch ([rows, width], 0 past each completion); null when a completion has none. */
function samplingLogps(completions: readonly SampledBatch['completions'][number][], batch: CompletionBatch): Float32Array | null {
  if (completions.some((c) => !c.logps)) return null;
  const out = new Float32Array(batch.rows * batch.width);
  completions.forEach((c, i) => out.set(c.logps!.slice(0, batch.lengths[i]), i * batch.width));
  return out;
}

/** μ passes of loss, backward, clipping and the optimizer step over one batch of completions; the last pass's figures. */
async function optimize(m: GrpoModels, s: GrpoSettings, prompts: readonly (readonly number[])[], batch: CompletionBatch, advantages: ArrayLike<number>, sampling: Float32Array | null): Promise<Optimized> {
  const started = performance.now();
  const precision = s.precision ?? 'fp32';
  const logpsOf = async (model: CausalLm): Promise<number[]> => Array.from(await noGrad(() => withComputePrecision(precision, () => tokenLogps(model, prompts, batch, s.temperature).logps)).read());
  // As TRL with vLLM: the rollouts' sampler is not trusted to be this forward, so "old" is always
  // the trainer's own forward before the update, and exp(old − sampling), bounded, weights each token (or completion).
  const oldLogps = s.iterations > 1 || sampling ? await logpsOf(m.policy) : null;
  const is = sampling && oldLogps ? importanceWeights(oldLogps, sampling, batch.mask, batch.width, s.importanceSampling!) : null;
  const refLogps = s.beta > 0 && m.reference ? await logpsOf(m.reference) : null;
  let last: Omit<Optimized, 'tokens' | 'seconds' | 'importance'> = { loss: NaN, kl: NaN, entropy: NaN, clip: { low_mean: 0, high_mean: 0, region_mean: 0 }, gradNorm: null };
  m.policy.train(true);
  for (let i = 0; i < s.iterations; i++) {
    m.policy.zeroGrad();
    const { logps, entropies } = withComputePrecision(precision, () => tokenLogps(m.policy, prompts, batch, s.temperature));
    const { loss, metrics } = await grpoLoss(logps, { mask: batch.mask, advantages, oldLogps, refLogps, entropies: await entropies.read(), importanceWeights: is?.weights }, {
      lossType: s.lossType, beta: s.beta, epsilon: s.epsilon, epsilonHigh: s.epsilonHigh, maxCompletionLength: s.maxCompletionLength,
    });
    const value = (await loss.read())[0];
    withComputePrecision(precision, () => backward(loss));
    const gradNorm = s.maxGradNorm > 0 ? await clipGradNorm(m.policy.arena().grads, s.maxGradNorm) : null;
    m.optimizer.step();
    last = {
      loss: value, kl: metrics.kl, entropy: metrics.entropy, gradNorm,
      clip: { low_mean: metrics.clipRatioLowMean, high_mean: metrics.clipRatioHighMean, region_mean: metrics.clipRatioRegionMean },
    };
  }
  const tokens = batch.lengths.reduce((n, l) => n + l, 0) + prompts.reduce((n, p) => n + p.length, 0);
  return { ...last, tokens, seconds: (performance.now() - started) / 1000, importance: is ? { min: is.min, mean: is.mean, max: is.max } : null };
}
