/**
 * Hand-made run.json objects for the validation tests (not a test file): realistic shape, chosen
 * numbers, so comparisons have known answers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_SCHEMA, RUN_SCHEMA_VERSION, type RunFile, type RunStep } from '../../src/validate/run_file.js';

export interface FakeRun {
  losses: number[];
  stepMs?: number;
  workers?: number;
  globalBatch?: number;
  strategy?: string;
}

export function fakeRun(o: FakeRun): RunFile {
  const workers = o.workers ?? 1;
  const g = o.globalBatch ?? 64;
  const ms = o.stepMs ?? 2;
  const steps: RunStep[] = o.losses.map((loss, step) => ({
    step, loss, samples: g, step_time_ms: ms, throughput_samples_per_sec: (g / ms) * 1000,
    compute_time_ms: ms * 0.8, allreduce_time_ms: ms * 0.15, wait_time_ms: ms * 0.05, time: 1_700_000_000_000 + step,
    ranks: Array.from({ length: workers }, (_, rank) => ({ rank, samples: g / workers, compute_ms: ms * 0.8, allreduce_ms: ms * 0.15, wait_ms: ms * 0.05 })),
  }));
  const n = steps.length;
  return {
    schema: RUN_SCHEMA, schema_version: RUN_SCHEMA_VERSION, strategy: o.strategy ?? (workers > 1 ? 'allreduce' : 'local'), model: 'mlp 16-128-4',
    dataset: 'synthetic-regression', seed: 0, num_workers: workers, num_steps: n, batch_size_per_worker: g / workers, global_batch_size: g,
    total_samples: g * n, total_time_sec: (ms * n) / 1000, wall_time_sec: 1, total_compute_time_ms: ms * 0.8 * n,
    total_allreduce_time_ms: ms * 0.15 * n, total_wait_time_ms: ms * 0.05 * n, average_step_time_ms: ms,
    average_loss: o.losses.reduce((a, b) => a + b, 0) / Math.max(1, n), final_loss: o.losses[n - 1] ?? NaN,
    average_throughput_samples_per_sec: (g / ms) * 1000, test_loss: null, test_accuracy: null,
    started_at: '2026-01-01T00:00:00.000Z', ended_at: '2026-01-01T00:00:01.000Z', start_timestamp: '2026-01-01T00:00:00.000Z',
    end_timestamp: '2026-01-01T00:00:01.000Z', steps, per_rank: [],
    environment: {
      smolcluster_version: '0.1.0', node: process.version, backend: 'js', precision: 'fp32', threads_per_worker: 1,
      host: { hostname: 'test', platform: 'linux', arch: 'x64', cpus: 2, node: process.version },
    },
    experiment_dir: '/nowhere',
    config: {} as RunFile['config'],
  };
}

export function writeRun(dir: string, name: string, o: FakeRun | RunFile): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify('schema' in o ? o : fakeRun(o)));
  return file;
}

/** A smooth decreasing loss curve. */
export function curve(n: number, scale = 1): number[] {
  return Array.from({ length: n }, (_, i) => scale * (0.1 + Math.exp(-i / 10)));
}
