/**
 * What an async-ps run with one slowed worker did (bench:balance's async-ps rows), from its
 * experiment folder: the workers' samples per second of wall time (first step to last, all workers),
 * each worker's batches, and how long the fast worker sat idle at the end while the slow one went
 * on (the cost of fixed shards that balancing by push cadence removes).
 */
import { join } from 'node:path';
import { readMetrics } from '../../src/metrics/reader.js';

export interface AsyncBalanceRun {
  samplesPerSec: number;
  /** Per worker rank (1, 2, …): steps taken. */
  steps: number[];
  /** Seconds from the first worker step's end to the last one's. */
  seconds: number;
  /** Seconds between the fast worker's (rank 1) last step and the run's last step, over `seconds`. */
  fastIdleFraction: number;
}

export function readAsyncBalanceRun(dir: string, workers: number[]): AsyncBalanceRun {
  const steps = readMetrics(join(dir, 'metrics.jsonl')).steps.filter((s) => workers.includes(s.rank));
  const times = steps.map((s) => s.time);
  const first = Math.min(...times);
  const last = Math.max(...times);
  const seconds = (last - first) / 1000;
  const samples = steps.reduce((a, s) => a + s.samples, 0);
  const fastLast = Math.max(...steps.filter((s) => s.rank === workers[0]).map((s) => s.time));
  return {
    samplesPerSec: samples / seconds,
    steps: workers.map((w) => steps.filter((s) => s.rank === w).length),
    seconds,
    fastIdleFraction: (last - fastLast) / (last - first),
  };
}
