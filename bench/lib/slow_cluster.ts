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
import { cpus } from 'node:os';
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
  /** Pin worker r to CPU r (mod this machine's CPUs; `taskset`), so outside load on one CPU meets one worker. */
  pin?: boolean;
  /** Outside load: a CPU-burning process beside worker `beside` (its CPU and its cgroup, so it takes half of that worker's CPU) from step `fromStep` until `toStep`. */
  burner?: { beside: number; fromStep: number; toStep: number };
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
  /** The outside load's first and last step as the metrics saw them (null: no burner, or it never ran). */
  burnedSteps: [number, number] | null;
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
      const command = [process.execPath, CLI, 'worker', '--rank', String(r), '--world-size', String(o.workers), '--master', `127.0.0.1:${port}`, ...o.args, ...fault];
      const [exe, ...args] = o.pin ? pinned(r, command) : command;
      const child = spawn(exe, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
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
    const burned = o.burner ? burnBeside(o.burner, o.pin ?? false, version ? groups[o.burner.beside] : null, o.metricsFile, exits, children) : null;
    const codes = await Promise.all(exits);
    clearTimeout(timer);
    const burnedAt = burned ? await burned : null;
    const slowed = slowedAt === null || !existsSync(o.metricsFile) ? null
      : readMetrics(o.metricsFile).steps.filter((s) => s.rank === o.slowRank && s.time > slowedAt!).sort((a, b) => a.step - b.step)[0];
    return {
      codes, stderr, slowedAt, slowedFromStep: version ? (slowed?.step ?? null) : from, burnedSteps: burnedAt && existsSync(o.metricsFile) ? stepsBetween(o.metricsFile, o.burner!.beside, burnedAt) : null,
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


/** `command` pinned to CPU `r` (mod the CPUs) by taskset, which runs it in its own process. */
function pinned(r: number, command: string[]): string[] {
  return ['taskset', '-c', String(r % cpus().length), ...command];
}

/**
 * A busy loop pinned beside worker `beside` and in its cgroup from `fromStep` until `toStep` (or the
 * run's end); resolves to when it ran (ms since the epoch), or null if the run ended first.
 */
async function burnBeside(
  b: { beside: number; fromStep: number; toStep: number }, pin: boolean, group: CpuQuota | null, file: string, exits: Promise<unknown>[], children: ChildProcess[],
): Promise<[number, number] | null> {
  if (!(await waitForStep(file, b.fromStep, exits))) return null;
  const command = [process.execPath, '-e', 'for (;;) {}'];
  const [exe, ...args] = pin ? pinned(b.beside, command) : command;
  const burner = spawn(exe, args, { stdio: 'ignore' });
  children.push(burner);
  const gone = new Promise((resolve) => burner.on('close', resolve));
  group?.add(burner.pid!);
  const start = Date.now();
  await waitForStep(file, b.toStep, exits);
  burner.kill('SIGKILL');
  await gone;
  return [start, Date.now()];
}

/** Worker `rank`'s first and last step that ended within [from, to] (ms since the epoch). */
function stepsBetween(file: string, rank: number, [from, to]: [number, number]): [number, number] | null {
  const steps = readMetrics(file).steps.filter((s) => s.rank === rank && s.time > from && s.time <= to).map((s) => s.step);
  return steps.length > 0 ? [Math.min(...steps), Math.max(...steps)] : null;
}
