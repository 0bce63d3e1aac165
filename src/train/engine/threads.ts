import os from 'node:os';
import { backend } from '../../tensor/index.js';
import { calibratedThreads } from './thread_calibration.js';

export interface ThreadChoice {
  threads: number;
  /** Why: the flag, the environment, or the cores and the calibration. */
  source: string;
}

/**
 * Compute threads for this process: --threads, else SMOLCLUSTER_THREADS, else the cores divided
 * among the workers of this host (at least one each) — kept only if a one-time calibration finds
 * that many threads faster than one here and now (src/train/engine/thread_calibration.ts), else 1.
 */
export function chooseThreads(flag: number | undefined, workersOnThisHost = 1, cores = os.availableParallelism()): ThreadChoice {
  if (flag !== undefined && flag > 0) return { threads: flag, source: '--threads' };
  const env = Number(process.env.SMOLCLUSTER_THREADS);
  if (Number.isInteger(env) && env > 0) return { threads: env, source: 'SMOLCLUSTER_THREADS' };
  const workers = Math.max(1, workersOnThisHost);
  const share = Math.max(1, Math.floor(cores / workers));
  const split = `${cores} core${cores === 1 ? '' : 's'}${workers > 1 ? ` ÷ ${workers} workers` : ''}`;
  if (share === 1) return { threads: 1, source: split };
  const c = calibratedThreads(backend(), share);
  const verdict = Number.isNaN(c.speedup) ? 'no thread pool' : `${share} threads ${c.speedup.toFixed(2)}× of 1 in calibration`;
  return { threads: c.threads, source: `${split}; ${verdict}` };
}

/** chooseThreads' count alone. */
export function resolveThreads(flag: number | undefined, workersOnThisHost = 1): number {
  return chooseThreads(flag, workersOnThisHost).threads;
}
