import os from 'node:os';

/**
 * Compute threads for this process: --threads, else SMOLCLUSTER_THREADS, else all cores for a
 * single process, or the cores divided among the workers of a local cluster (at least one each).
 */
export function resolveThreads(flag: number | undefined, workersOnThisHost = 1): number {
  if (flag !== undefined && flag > 0) return flag;
  const env = Number(process.env.SMOLCLUSTER_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.floor(os.availableParallelism() / Math.max(1, workersOnThisHost)));
}
