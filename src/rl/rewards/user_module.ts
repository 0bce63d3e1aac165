/**
 * A reward written by the user: a JavaScript module (`./my_reward.mjs`) exporting a default or named
 * function `(prompt, completion, row) => number | Promise<number>`. Its calls run in a worker thread
 * (worker_host.ts), one at a time, each with a deadline: a hang costs one timeout and never blocks
 * the run. Module state survives between calls, but not the worker's restart after a timeout.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Reward, RewardRow } from './reward.js';
import { DEFAULT_REWARD_TIMEOUT_MS, WorkerHost } from './worker_host.js';

export { DEFAULT_REWARD_TIMEOUT_MS };

export interface UserRewardOptions {
  /** The export to call (default: the default export, else the module's only exported function). */
  exportName?: string;
  /** The deadline of one call, in ms (default 10 s); loading the module gets the same. */
  timeoutMs?: number;
  /** The reward's name in metrics and warnings (default: the file's base name). */
  name?: string;
}

/** Loads `file` in a worker: resolves once its function is found, else rejects naming the file. */
export async function userModuleReward(file: string, options: UserRewardOptions = {}): Promise<Reward> {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`reward module ${file}: no such file`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_REWARD_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`reward module ${file}: timeoutMs must be > 0, got ${timeoutMs}`);
  const host = new WorkerHost({ kind: 'module', file: path, exportName: options.exportName }, timeoutMs, `reward module ${file}`);
  await host.start();
  const name = options.name ?? path.split(/[\\/]/).at(-1)!.replace(/\.[cm]?js$/, '');
  return {
    name,
    timeoutMs,
    score: (prompt: string, completion: string, row: RewardRow) => host.call(prompt, completion, row),
    close: () => host.close(),
  };
}
