/**
 * GRPO's sampler over rollout workers: a step's prompts go to the pool (pool.ts), each prompt seeded
 * as the in-process sampler seeds it (seed + p·G for prompt p's first completion), so a seeded run
 * samples the same completions wherever they are decoded; prompts no worker could serve are sampled
 * here, in the trainer's process, with the same seeds. Each completion keeps the policy version that
 * sampled it.
 */
import type { CausalLm } from '../../generate/generate.js';
import { type RolloutOptions, type SampledBatch, type SampledCompletion, sampleCompletions } from '../rollouts.js';
import type { ChildProcess } from 'node:child_process';
import type { Policy } from '../policy.js';
import { type PoolRollouts, RolloutPool, type WeightSync } from './pool.js';
import { rolloutSettings } from './worker.js';
import { rolloutSignature } from './link.js';
import type { PolicyConfig } from '../policy.js';

export interface RolloutWorkersConfig {
  /** Workers to wait for before the first step. */
  workers: number;
  host: string;
  port: number;
  token: string;
  /** How long workers may take to start and connect (ms); one sampling request's deadline (ms). */
  startMs: number;
  requestMs: number;
  /** Starts local worker `index` told to dial `address`; absent: workers are started by hand and dial in. */
  spawn?: (address: string, index: number) => ChildProcess;
}

/** The pool opened over the policy's trainable arena, its weights sent as version 0. */
export async function openRolloutPool(c: RolloutWorkersConfig, policy: Policy, lora: Omit<PolicyConfig, 'seed'>, warn: (m: string) => void): Promise<RolloutPool> {
  const arena = policy.model.arena();
  const layout = arena.signature();
  return RolloutPool.start({
    host: c.host, port: c.port, token: c.token, signature: rolloutSignature(layout, rolloutSettings(lora, policy.spec.vocabSize)), workers: c.workers,
    vocabSize: policy.spec.vocabSize, startMs: c.startMs, requestMs: c.requestMs, spawn: c.spawn, warn,
  }, { version: 0, layout, values: await arena.params.read() });
}

/** After an optimizer step: the trainable weights (the adapters alone under LoRA) as `version`, a delta where the workers hold the version before. */
export async function syncRolloutPool(pool: RolloutPool, policy: Policy, version: number): Promise<WeightSync> {
  const arena = policy.model.arena();
  return pool.sync(version, arena.signature(), await arena.params.read());
}

export interface RemoteSampled extends SampledBatch {
  /** Live workers once sampled. */
  workers: number;
}

/** Rollouts asked of the workers, not yet taken: `requestRemote`'s answer. */
export interface RemoteRequest {
  prompts: readonly (readonly number[])[];
  options: RolloutOptions;
  seeds: number[];
  started: number;
  /** Resolves when the workers have answered (performance.now() then: the rollout seconds end there, not when the trainer takes them). */
  answer: Promise<PoolRollouts & { arrived: number }>;
}

/** Asks the workers for G completions of each prompt now; the answer is taken later (asynchronous GRPO) or at once. */
export function requestRemote(pool: RolloutPool, prompts: readonly (readonly number[])[], o: RolloutOptions): RemoteRequest {
  const seeds = prompts.map((_, p) => (o.seed + p * o.generations) % 2 ** 32);
  const answer = pool.sample(prompts, seeds, {
    generations: o.generations, maxCompletionLength: o.maxCompletionLength, temperature: o.temperature, topP: o.topP, topK: o.topK,
  }).then((r) => ({ ...r, arrived: performance.now() }));
  return { prompts, options: o, seeds, started: performance.now(), answer };
}

/**
 * The request's rollouts, in prompt order; prompts no worker could serve are sampled here, now, at
 * the policy's current weights (`version`): never while a step trains, whose weights are moving.
 */
export async function takeRemote(r: RemoteRequest, local: CausalLm, version: number): Promise<RemoteSampled> {
  const remote = await r.answer;
  let seconds = (remote.arrived - r.started) / 1000;
  const byPrompt = new Map<number, SampledCompletion[]>();
  for (const c of remote.completions) byPrompt.set(c.prompt, [...(byPrompt.get(c.prompt) ?? []), c]);
  if (remote.unserved.length > 0) {
    const here = await sampleCompletions(local, remote.unserved.map((p) => r.prompts[p]), { ...r.options, seeds: remote.unserved.map((p) => r.seeds[p]), logps: true });
    seconds += here.seconds;
    for (const c of here.completions) {
      const p = remote.unserved[c.prompt];
      byPrompt.set(p, [...(byPrompt.get(p) ?? []), { ...c, prompt: p, version }]);
    }
  }
  const completions = r.prompts.flatMap((_, p) => byPrompt.get(p)!);
  return { completions, tokens: completions.reduce((n, c) => n + c.ids.length, 0), seconds, workers: remote.workers };
}

/** `version`: the trainer's policy version now, the version of anything sampled here. */
export function sampleRemote(pool: RolloutPool, local: CausalLm, version: number, prompts: readonly (readonly number[])[], o: RolloutOptions): Promise<RemoteSampled> {
  return takeRemote(requestRemote(pool, prompts, o), local, version);
}
