/**
 * GRPO's rollouts: G completions of each prompt sampled from the policy, decoded together with
 * continuous batching (generate/batch.ts) — a prompt's G choices share one prefill, its cache copied
 * to each — at most `maxRows` sequences at once. Each completion has its own seed stream, so a
 * seeded run samples the same completions again.
 */
import type { CausalLm } from '../generate/generate.js';
import { DecodeBatch } from '../generate/batch.js';
import { Sequence, type StopReason } from '../generate/sequence.js';
import { cpuHostKernels } from '../tensor/cpu_host_kernels.js';
import type { Precision } from '../tensor/precision.js';

export interface RolloutOptions {
  /** G: completions per prompt (TRL's num_generations). */
  generations: number;
  maxCompletionLength: number;
  temperature: number;
  topP?: number;
  topK?: number;
  eosIds: readonly number[];
  /** The first completion's seed; completion k of the batch samples with seed + k. */
  seed: number;
  precision?: Precision;
  /** Sequences decoding together at most (default 32). */
  maxRows?: number;
  /** Prompt p's first completion's seed (default seed + p·G): a rollout worker given a share of a step's prompts samples what the trainer would have. */
  seeds?: readonly number[];
  /** Record each sampled token's log-probability at the sampling temperature (`logps` of each completion). */
  logps?: boolean;
}

export interface SampledCompletion {
  /** The prompt's index in the batch. */
  prompt: number;
  ids: number[];
  stopReason: StopReason;
  /** With `logps`: each token's log_softmax(logits / temperature) — what TRL's trainer computes as old log-probs, and vLLM's processed_logprobs. */
  logps?: number[];
  /** The policy version that sampled it (rollout workers; absent: the trainer's current one). */
  version?: number;
}

export interface SampledBatch {
  /** prompts × G completions, a prompt's G consecutive. */
  completions: SampledCompletion[];
  /** Tokens generated, over the seconds sampling took. */
  tokens: number;
  seconds: number;
}

/** G completions of every prompt, in prompt order. */
export async function sampleCompletions(model: CausalLm, prompts: readonly (readonly number[])[], o: RolloutOptions): Promise<SampledBatch> {
  const started = performance.now();
  const wasTraining = model.training;
  model.eval();
  try {
    const sequences = prompts.flatMap((ids, p) => Array.from({ length: o.generations }, (_, g) => new ScoredSequence(ids, {
      maxNewTokens: o.maxCompletionLength, temperature: o.temperature, topP: o.topP, topK: o.topK, eosIds: o.eosIds,
      seed: ((o.seeds?.[p] ?? o.seed + p * o.generations) + g) % 2 ** 32,
    }, o.logps ? o.temperature : null)));
    const results = await decodeAll(new DecodeBatch(model, o.precision), sequences, o.maxRows ?? 32, o.generations);
    const completions = results.map((stopReason, i) => ({
      prompt: Math.floor(i / o.generations), ids: sequences[i].ids.slice(), stopReason, ...(o.logps ? { logps: sequences[i].logps.slice() } : {}),
    }));
    return { completions, tokens: completions.reduce((n, c) => n + c.ids.length, 0), seconds: (performance.now() - started) / 1000 };
  } finally {
    model.train(wasTraining);
  }
}

/**
 * A sequence that records each chosen token's log-probability at the sampling temperature:
 * log_softmax(logits / T)[token] as the trainer's tokenLogps computes it (the division in float32,
 * then the engine's log-softmax kernel: generate's own logprobs are the raw logits', vLLM's default;
 * TRL asks vLLM for the processed ones). Top-k / top-p do not enter it, as they do not enter the trainer's.
 */
class ScoredSequence extends Sequence {
  readonly logps: number[] = [];

  constructor(ids: readonly number[], options: ConstructorParameters<typeof Sequence>[1], private readonly scoreAt: number | null) {
    super(ids, options);
  }

  override choose(logits: Float32Array): number {
    const token = super.choose(logits);
    if (this.scoreAt !== null) this.logps.push(logpAt(logits, token, this.scoreAt));
    return token;
  }
}

/** log_softmax(logits / temperature)[token]: the division in float32, the row through the cpu's log-softmax kernel. */
function logpAt(logits: Float32Array, token: number, temperature: number): number {
  if (scaled.length < logits.length) [scaled, logSoftmaxes] = [new Float32Array(logits.length), new Float32Array(logits.length)];
  const x = scaled.subarray(0, logits.length);
  for (let i = 0; i < logits.length; i++) x[i] = logits[i] / temperature;
  const out = logSoftmaxes.subarray(0, logits.length);
  cpuHostKernels().logSoftmax(x, 1, logits.length, out);
  return out[token];
}

/** logpAt's rows, reused from call to call. */
let scaled = new Float32Array(0);
let logSoftmaxes = new Float32Array(0);

/**
 * Decodes every sequence to its stop: a prompt's G sequences join together (sharing a prefill)
 * whenever the rows have room for them; each step, finished sequences leave.
 */
async function decodeAll(batch: DecodeBatch, sequences: readonly Sequence[], maxRows: number, group: number): Promise<StopReason[]> {
  const stops = new Array<StopReason>(sequences.length);
  const index = new Map(sequences.map((s, i) => [s, i]));
  let next = 0;
  const finish = (s: Sequence): void => {
    const stop = s.stopped();
    if (stop === null) return;
    stops[index.get(s)!] = stop;
    batch.leave(s);
  };
  while (next < sequences.length || batch.size > 0) {
    while (next < sequences.length && batch.size + group <= Math.max(maxRows, group)) {
      const joining = sequences.slice(next, next + group);
      next += joining.length;
      await batch.joinAll(joining);
      joining.forEach(finish);
    }
    for (const { sequence } of await batch.step()) finish(sequence);
  }
  return stops;
}
