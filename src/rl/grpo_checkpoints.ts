/**
 * GRPO's checkpoints and resume (`grpo --checkpoint-every N`, `--resume DIR|auto`; docs/RL.md):
 * train's checkpoint files (train/run/checkpoints.ts: atomic, the newest K kept, a truncated,
 * corrupt or foreign file refused by name and the one before tried) holding what trains — the
 * adapters under LoRA, every weight otherwise — with AdamW's state, after step N. Everything else a
 * step depends on is a function of the seed and the step (the prompts' order, the rollouts' seeds),
 * so a resumed run takes exactly the steps the uninterrupted one would have taken. metrics.jsonl
 * keeps the lines of the steps and held-out evaluations before the checkpoint, so no step is
 * recorded twice.
 */
import { join } from 'node:path';
import { keepRecordsBefore } from '../metrics/step_metrics.js';
import { Checkpointer } from '../train/run/checkpoints.js';
import { StopRequest } from '../train/run/interrupt.js';
import { ConfigError } from '../util/errors.js';
import type { HeldOutRecord } from './held_out.js';

export interface GrpoCheckpointOptions {
  /** Steps between checkpoints (0: none). */
  every: number;
  /** Default: <run>/checkpoints. */
  dir?: string;
  keep: number;
  /** A folder of checkpoints, or `auto`: this run's own (--checkpoint-dir), starting fresh where it holds none. */
  resume?: string;
}

/**
 * The settings that make a run's trajectory (the policy, the prompts, the rewards, the sampling and
 * the loss): a checkpoint of other settings is another run's. How many steps, evaluations, workers,
 * threads and where things go may change on resume.
 */
const OUTSIDE_IDENTITY = new Set([
  'maxSteps', 'evalEvery', 'evalFile', 'runDir', 'save', 'rollout', 'maxStaleness', 'importanceSamplingCap', 'importanceSamplingMin', 'importanceSamplingMode', 'onStep', 'onEval', 'warn',
  'checkpoints', 'maxRows', 'rewardTimeoutMs',
]);

export function grpoRunIdentity(o: Record<string, unknown>): string {
  const kept = Object.keys(o).filter((k) => !OUTSIDE_IDENTITY.has(k) && o[k] !== undefined).sort();
  return `grpo ${JSON.stringify(Object.fromEntries(kept.map((k) => [k, o[k]])))}`;
}

/**
 * The run's checkpointer (null when it neither saves nor resumes), its folder checked writable now.
 * When it saves, Ctrl-C (or SIGTERM) lets the step in flight finish, saves it and stops the run
 * (train/run/interrupt.ts): `stop`, once the run listens to it (until disposed).
 */
export function grpoCheckpointer(c: GrpoCheckpointOptions | undefined, runDir: string, identity: string, log: (line: string) => void): { checkpointer: Checkpointer; stop?: StopRequest } | null {
  if (!c || (c.every === 0 && c.resume === undefined)) return null;
  if (c.resume === '') throw new ConfigError('command line', '--resume', 'names no folder: give a checkpoint folder or auto');
  const stop = c.every > 0 ? new StopRequest() : undefined;
  const checkpointer = new Checkpointer({ dir: c.dir ?? join(runDir, 'checkpoints'), every: c.every, keep: c.keep, resume: c.resume }, identity, true, {
    refused: (file, why) => log(`grpo: checkpoint refused: ${why}; trying the one before it`),
  }, undefined, undefined, 1, stop);
  return { checkpointer, stop };
}

/**
 * A resumed run's metrics.jsonl cut to what happened before its checkpoint (after `steps` steps):
 * the step lines before it and the held-out evaluations up to it, which are returned.
 */
export function keepMetricsBefore(runDir: string, steps: number): { step: number; record: HeldOutRecord }[] {
  return keepRecordsBefore(join(runDir, 'metrics.jsonl'), steps, ['grpo_eval']).filter((r) => r.kind === 'grpo_eval').map((r) => {
    const { schema: _s, schema_version: _v, kind: _k, step, time: _t, ...record } = r;
    return { step: step as number, record: record as unknown as HeldOutRecord };
  });
}
