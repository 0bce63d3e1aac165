/**
 * GRPO's rollouts: G completions of each prompt sampled from the policy, decoded together with
 * continuous batching (generate/batch.ts) — a prompt's G choices share one prefill, its cache copied
 * to each — at most `maxRows` sequences at once. Each completion has its own seed stream, so a
 * seeded run samples the same completions again.
 */
import type { CausalLm } from '../generate/generate.js';
import { DecodeBatch } from '../generate/batch.js';
import { Sequence, type StopReason } from '../generate/sequence.js';
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
}

export interface SampledCompletion {
  /** The prompt's index in the batch. */
  prompt: number;
  ids: number[];
  stopReason: StopReason;
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
    const sequences = prompts.flatMap((ids, p) => Array.from({ length: o.generations }, (_, g) => new Sequence(ids, {
      maxNewTokens: o.maxCompletionLength, temperature: o.temperature, topP: o.topP, topK: o.topK, eosIds: o.eosIds,
      seed: (o.seed + p * o.generations + g) % 2 ** 32,
    })));
    const results = await decodeAll(new DecodeBatch(model, o.precision), sequences, o.maxRows ?? 32, o.generations);
    const completions = results.map((stopReason, i) => ({ prompt: Math.floor(i / o.generations), ids: sequences[i].ids.slice(), stopReason }));
    return { completions, tokens: completions.reduce((n, c) => n + c.ids.length, 0), seconds: (performance.now() - started) / 1000 };
  } finally {
    model.train(wasTraining);
  }
}

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
