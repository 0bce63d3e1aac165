/**
 * Process helpers for the cluster integration tests (launcher, workers, metrics files) — not a test
 * file. Everything runs on 127.0.0.1; every wait has a deadline so a hung cluster fails the test
 * instead of hanging it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI } from './cli.js';
import type { StepLine } from '../../src/metrics/reader.js';

export { CLI };

/** A cluster token long enough for resolveToken. */
export const TEST_TOKEN = 'cluster-test-token-0123456789abcdef';

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  ms: number;
  /** performance.now() at exit. */
  at: number;
  /** True when the helper had to kill the process at its deadline. */
  timedOut: boolean;
}

export interface Running {
  child: ChildProcess;
  pid: number;
  /** Output so far (grows while the process runs). */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves at exit (never rejects). */
  done: Promise<Exited>;
}

export interface StartOptions {
  /** Extra environment variables, merged over this process's (undefined removes one). */
  env?: Record<string, string | undefined>;
  /** SIGKILL the process (and report timedOut) after this long; default 60 s. */
  timeoutMs?: number;
}

/** Starts `node dist/src/cli/main.js ...args` with piped output. */
export function startCli(args: readonly string[], opts: StartOptions = {}): Running {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 60_000);
  const done = new Promise<Exited>((resolve) => {
    // 'close' (not 'exit'): the output streams are complete.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const at = performance.now();
      resolve({ code, signal, stdout, stderr, ms: at - t0, at, timedOut });
    });
  });
  return {
    child,
    pid: child.pid!,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
  };
}

/** Runs the CLI to completion. */
export function runCliProcess(args: readonly string[], opts: StartOptions = {}): Promise<Exited> {
  return startCli(args, opts).done;
}

/** Several CLI processes at once (e.g. the ranks of one cluster), each with its own env. */
export function runAll(runs: Array<{ args: readonly string[]; env?: Record<string, string | undefined> }>, timeoutMs = 60_000): Promise<Exited[]> {
  return Promise.all(runs.map((r) => runCliProcess(r.args, { env: r.env, timeoutMs })));
}

/** The non-empty lines of some output, with progress-bar carriage returns treated as line breaks. */
export function linesOf(text: string): string[] {
  return text.split(/\r?\n|\r/).map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
}

/** The `smolcluster: error:` lines of some output (rank prefixes included). */
export function errorLines(text: string): string[] {
  return linesOf(text).filter((l) => l.includes('smolcluster: error:'));
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `smolcluster-${prefix}-`));
}

/** A port that was free a moment ago (listen on 0, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `cond()` is truthy; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(cond: () => T | undefined | null | false, what: string, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Complete lines of a file (none if it does not exist yet). */
export function fileLines(file: string): string[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text.split('\n').slice(0, -1);
}

/** Waits until `file` holds at least `n` complete lines. */
export function waitForLines(file: string, n: number, timeoutMs = 20_000): Promise<string[]> {
  return waitFor(() => {
    const lines = fileLines(file);
    return lines.length >= n ? lines : null;
  }, `${n} lines in ${file}`, timeoutMs);
}

/** The parsed lines of a metrics.jsonl (throws, naming the line, on one that does not parse). */
export function readJsonl(file: string): Array<Record<string, unknown>> {
  return fileLines(file).map((line, i) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`${file}:${i + 1} is not JSON: ${line.slice(0, 200)}`);
    }
  });
}

/** The step records of a metrics.jsonl, optionally of one rank, in step order. */
export function stepRecords(file: string, rank?: number): StepLine[] {
  return (readJsonl(file).filter((r) => r.kind === 'step') as unknown as StepLine[])
    .filter((r) => rank === undefined || r.rank === rank)
    .sort((a, b) => a.step - b.step || a.rank - b.rank);
}

/** The parameters saved by --save (docs/CHECKPOINT.md: magic, u32 LE header length, JSON header, LE float32). */
export function readSavedParams(file: string): { header: { params: Array<{ name: string; shape: number[]; offset: number }> }; params: Float32Array } {
  const buf = readFileSync(file);
  if (buf.subarray(0, 8).toString('latin1') !== 'SMOLMDL\0') throw new Error(`${file}: not a smolcluster model file`);
  const hlen = buf.readUInt32LE(8);
  const header = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8'));
  const start = 12 + hlen;
  const count = (header.params as Array<{ shape: number[]; offset: number }>).reduce((n, p) => Math.max(n, p.offset + p.shape.reduce((a, b) => a * b, 1)), 0);
  const params = new Float32Array(count);
  for (let i = 0; i < count; i++) params[i] = buf.readFloatLE(start + 4 * i);
  return { header, params };
}

/** The largest absolute difference between two saved models' parameters (the same layout). */
export function largestParamDifference(fileA: string, fileB: string): number {
  const a = readSavedParams(fileA).params;
  const b = readSavedParams(fileB).params;
  if (a.length !== b.length) throw new Error(`${fileA} holds ${a.length} parameters, ${fileB} ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Direct children of a process (Linux /proc; every thread's list). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** The environment a process was started with (Linux /proc), or null once it is gone. */
export function processEnv(pid: number): Record<string, string> | null {
  try {
    const env: Record<string, string> = {};
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return env;
  } catch {
    return null;
  }
}

/** The launcher's worker processes by rank (from their RANK variable). */
export function workersByRank(launcherPid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of childPids(launcherPid)) {
    const rank = processEnv(pid)?.RANK;
    if (rank !== undefined) out.set(Number(rank), pid);
  }
  return out;
}

/** Waits until the launcher has `n` workers and returns the pid of the one with RANK=rank. */
export async function findWorker(launcherPid: number, rank: number, n: number, timeoutMs = 20_000): Promise<number> {
  const m = await waitFor(() => {
    const w = workersByRank(launcherPid);
    return w.size === n ? w : null;
  }, `${n} workers of launcher ${launcherPid}`, timeoutMs);
  const pid = m.get(rank);
  if (pid === undefined) throw new Error(`launcher ${launcherPid} has no worker with RANK=${rank}`);
  return pid;
}

/** True while the process exists and is not a zombie (exited, not yet reaped). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * The scale floor for comparing gradients (maxRelDiff's third argument): a gradient that is zero in
 * exact arithmetic (BERT's key bias: softmax ignores a shift every key shares) is float noise in
 * both runs, so it is measured against 1e-6, a hundredth of the smallest real gradient scale here.
 */
export const GRADIENT_NOISE_FLOOR = 1e-6;

/** Largest |a_i - b_i| over max |b_i|, or over `floor` where that is larger (both arrays the same length). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  scale = Math.max(scale, floor);
  return scale === 0 ? diff : diff / scale;
}

/** Rank 0's loss of every step of the run in `runDir`, from its metrics.jsonl. */
export function rankZeroLosses(runDir: string): number[] {
  const out: number[] = [];
  for (const line of readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { rank?: number; step?: number; loss?: number };
    if (r.rank === 0 && r.loss !== undefined && r.step !== undefined) out[r.step] = r.loss;
  }
  return out;
}
