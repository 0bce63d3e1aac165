/**
 * A two-or-more-worker cluster on this machine with one worker really slowed: its CPU time limited
 * by a cgroup quota (src/validate/cpu_quota.ts), from the start or from step S, and every worker in
 * its own high-weight group so the neighbours' load slows neither. Where no cgroup cpu controller
 * is writable, the `slow` fault (a sleep per step) stands in, and the result says so. Used by
 * `bench:balance` and test/balance/slow_node.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { freePort } from './free_port.js';
import { join } from 'node:path';
import { readMetrics } from '../../src/metrics/reader.js';
import { CpuQuota, cpuControllerAvailable } from '../../src/validate/cpu_quota.js';
import { packageRoot } from './child.js';

export interface SlowClusterOptions {
  /** `worker` flags every rank gets (training flags, --name, --experiments-dir). */
  args: string[];
  workers: number;
  slowRank: number;
  /** Share of one CPU the slowed worker may use (1/3: three times slower; 1: not slowed, equal nodes). */
  fraction: number;
  /** The quota's period in ms (default: the shortest, 3 ms: a slower clock; the kernel's default is 100). */
  periodMs?: number;
  /** Slow it from this step on (default 0: from the start). */
  fromStep?: number;
  /** The run's metrics.jsonl, watched for `fromStep`. */
  metricsFile: string;
  /** The fallback's sleep per step where cgroups are unavailable (ms). */
  fallbackSlowMs?: number;
  timeoutMs?: number;
}

export interface SlowClusterResult {
  codes: (number | null)[];
  stderr: string[];
  /** How the worker was slowed: a cgroup quota (v1/v2), or the `slow` fault where no cgroup is writable. */
  slowedBy: 'cgroup v1 cpu quota' | 'cgroup v2 cpu.max' | 'slow fault (no writable cgroup)';
  /** When the quota took effect (ms since the epoch). */
  slowedAt: number | null;
  /**
   * The slowed rank's first step that ended after the quota took effect. metrics.jsonl is flushed
   * every 0.5 s, so a mid-run slowdown lands some steps after `fromStep`: this is where it did.
   */
  slowedFromStep: number | null;
}

const CLI = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');
/** Far above the default 1024 of the processes outside. */
const WEIGHT = 100_000;

export async function runSlowCluster(o: SlowClusterOptions): Promise<SlowClusterResult> {
  const version = cpuControllerAvailable();
  const port = await freePort();
  const from = o.fromStep ?? 0;
  const fault = version || o.fraction >= 1 ? [] : ['--fault', `slow:rank=${o.slowRank}:ms=${o.fallbackSlowMs ?? 20}:step=${from}`];
  const groups = version ? Array.from({ length: o.workers }, (_, r) => CpuQuota.create(`bench-r${r}`, { weight: WEIGHT })) : [];
  const env = { ...process.env, SMOLCLUSTER_TOKEN: process.env.SMOLCLUSTER_TOKEN ?? 'slow-cluster-token-0123456789abcdef' };
  const children: ChildProcess[] = [];
  const stderr: string[] = Array(o.workers).fill('');
  let slowedAt: number | null = null;
  try {
    if (version && from === 0 && o.fraction < 1) {
      groups[o.slowRank].limit(o.fraction, o.periodMs === undefined ? undefined : o.periodMs * 1000);
      slowedAt = Date.now();
    }
    const exits = Array.from({ length: o.workers }, (_, r) => {
      const child = spawn(process.execPath, [CLI, 'worker', '--rank', String(r), '--world-size', String(o.workers), '--master', `127.0.0.1:${port}`, ...o.args, ...fault], {
        env, stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(child);
      if (version) groups[r].add(child.pid!);
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr[r] += s));
      return new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    });
    const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), o.timeoutMs ?? 300_000);
    if (version && from > 0) {
      void waitForStep(o.metricsFile, from, exits).then((ok) => {
        if (o.fraction >= 1) return;
        if (!ok) return;
        groups[o.slowRank].limit(o.fraction, o.periodMs === undefined ? undefined : o.periodMs * 1000);
        slowedAt = Date.now();
      });
    }
    const codes = await Promise.all(exits);
    clearTimeout(timer);
    const slowed = slowedAt === null || !existsSync(o.metricsFile) ? null
      : readMetrics(o.metricsFile).steps.filter((s) => s.rank === o.slowRank && s.time > slowedAt!).sort((a, b) => a.step - b.step)[0];
    return {
      codes, stderr, slowedAt, slowedFromStep: version ? (slowed?.step ?? null) : from,
      slowedBy: version === 'v1' ? 'cgroup v1 cpu quota' : version === 'v2' ? 'cgroup v2 cpu.max' : 'slow fault (no writable cgroup)',
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const g of groups) g.remove();
  }
}

/** Polls metrics.jsonl until some rank has recorded step `step - 1` (so `step` is next). */
async function waitForStep(file: string, step: number, exits: Promise<unknown>[]): Promise<boolean> {
  let ended = false;
  void Promise.all(exits).then(() => (ended = true));
  const needle = `"step":${step - 1},`;
  while (!ended) {
    if (existsSync(file) && readFileSync(file, 'utf8').includes(needle)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

