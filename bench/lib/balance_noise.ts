/**
 * bench:balance --noise: load balancing under real-world noise (issue 33 §8), each scenario run
 * without balancing and with the default policy as a user types it (`--enable-load-balancing`),
 * two workers (allreduce, one thread each), MNIST CNN, no evaluation until the end:
 * - `bursty quota, batch B`: rank 1 held to a third of a CPU in the kernel's default 100 ms quota
 *   periods (it runs 33 ms, then stalls 67 ms), at batch 32 and 128 per worker;
 * - `outside load`: equal nodes, each worker pinned to its own CPU; a CPU-burning process pinned
 *   beside rank 1, in its cgroup (so it takes half of rank 1's CPU), for the middle third of the run.
 * The cgroups are created and removed by bench/lib/slow_cluster.ts; where none is writable the
 * bench says so and runs nothing (the `slow` fault is no bursty quota).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cpuControllerAvailable } from '../../src/validate/cpu_quota.js';
import { type BalanceRun, readBalanceRun } from './balance_report.js';
import { fmtNum, renderTable } from './index.js';
import { runSlowCluster } from './slow_cluster.js';

export interface NoiseOptions {
  steps: number;
  interval: number;
  dir: string;
}

interface Scenario {
  name: string;
  batch: number;
  /** Rank 1's quota (a fraction of one CPU in 100 ms periods), or null: equal nodes under outside load. */
  fraction: number | null;
}

const SCENARIOS: Scenario[] = [
  { name: 'bursty quota, batch 32', batch: 32, fraction: 1 / 3 },
  { name: 'bursty quota, batch 128', batch: 128, fraction: 1 / 3 },
  { name: 'outside load, batch 32', batch: 32, fraction: null },
];

export interface NoiseResult {
  scenario: string;
  none: BalanceRun;
  balanced: BalanceRun;
  /** Rank 1's share: the smallest and largest it was given, and at the end. */
  share: { min: number; max: number; final: number };
  /** Steps the outside load ran over (rank 1's), for `outside load`. */
  burnedSteps: [number, number] | null;
}

export async function runNoiseScenarios(o: NoiseOptions): Promise<NoiseResult[] | string> {
  if (!cpuControllerAvailable()) return 'bench:balance --noise: no writable cgroup cpu controller (needs Linux and root): the bursty quota and the outside load cannot be made here, nothing was run';
  if (spawnSync('taskset', ['-V']).error) return 'bench:balance --noise: no `taskset` (util-linux) to pin the workers and the outside load to CPUs, nothing was run';
  const results: NoiseResult[] = [];
  for (const s of SCENARIOS) {
    const runs: BalanceRun[] = [];
    let burnedSteps: [number, number] | null = null;
    for (const balanced of [false, true]) {
      const name = `${s.name.replace(/[^a-z0-9]+/g, '-')}${balanced ? '-balanced' : ''}`;
      process.stderr.write(`bench:balance: ${s.name}${balanced ? ', balanced' : ''} …\n`);
      const r = await runOne(o, s, name, balanced);
      runs.push(r.run);
      if (balanced) burnedSteps = r.burnedSteps;
    }
    const shares = [0.5, ...runs[1].rebalances.map((e) => e.shares[1])];
    results.push({ scenario: s.name, none: runs[0], balanced: runs[1], share: { min: Math.min(...shares), max: Math.max(...shares), final: runs[1].finalShare[1] }, burnedSteps });
  }
  return results;
}

async function runOne(o: NoiseOptions, s: Scenario, name: string, balanced: boolean): Promise<{ run: BalanceRun; burnedSteps: [number, number] | null }> {
  const args = [
    '--model', 'cnn', '--batch-size', String(s.batch), '--max-steps', String(o.steps), '--epochs', '20', '--threads', '1', '--eval-every', '0',
    '--checksum-every', '0', '--timeout', '60', '--name', name, '--experiments-dir', o.dir,
    ...(balanced ? ['--enable-load-balancing', '--rebalance-interval', String(o.interval)] : []),
  ];
  const third = Math.round(o.steps / 3);
  const r = await runSlowCluster({
    args, workers: 2, slowRank: 1, fraction: s.fraction ?? 1, periodMs: 100, metricsFile: join(o.dir, name, 'metrics.jsonl'), timeoutMs: 600_000,
    ...(s.fraction === null ? { pin: true, burner: { beside: 1, fromStep: third, toStep: 2 * third } } : {}),
  });
  if (r.codes.some((c) => c !== 0)) throw new Error(`bench:balance: ${name} failed:\n${r.stderr.join('\n')}`);
  return { run: readBalanceRun(join(o.dir, name), { from: 2 * o.interval, target: 1 }), burnedSteps: r.burnedSteps };
}

export function renderNoise(o: NoiseOptions, results: NoiseResult[], loadAvg: number | string): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const rows = results.map((r) => [
    r.scenario, fmtNum(r.none.runSamplesPerSec, 0), fmtNum(r.balanced.runSamplesPerSec, 0), `${(r.balanced.runSamplesPerSec / r.none.runSamplesPerSec).toFixed(2)}×`,
    `${(r.balanced.samplesPerSec / r.none.samplesPerSec).toFixed(2)}×`, `${pct(r.share.min)} – ${pct(r.share.max)}`, pct(r.share.final),
    r.burnedSteps ? `${r.burnedSteps[0]}–${r.burnedSteps[1]}` : '—',
  ]);
  return `bench:balance --noise — 2 workers (allreduce, 1 thread each), cnn, ${o.steps} steps, K=${o.interval}, the default policy; load average ${loadAvg} at start\n\n`
    + renderTable([
      { header: 'scenario' }, { header: 'none samples/s (result.json)' }, { header: 'balanced' }, { header: 'vs none' }, { header: `vs none, steps ${2 * o.interval}–end` },
      { header: 'r1 share min – max' }, { header: 'r1 share final' }, { header: 'outside load over steps' },
    ], rows) + '\n';
}
