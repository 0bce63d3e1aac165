/**
 * A cluster of `worker` processes on 127.0.0.1, each in its own cgroup v1 memory group
 * (src/validate/memory_cap.ts): capped at `capBytes`, or uncapped (null) to measure what it needs.
 * Each worker enters its group before Node starts (a shell writes its own pid into cgroup.procs,
 * then execs), so every byte it ever holds is charged there. Used by `bench:zero-memory` and
 * test/parallel/zero/memory_cap.test.ts.
 */
import { spawn } from 'node:child_process';
import { freePort } from './free_port.js';
import { join } from 'node:path';
import { MemoryCap } from '../../src/validate/memory_cap.js';
import { packageRoot } from './child.js';

const CLI = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');
/** "Uncapped": far above anything a test run holds, below the kernel's own "no limit". */
const NO_CAP = 64 * 2 ** 30;

export interface CappedRun {
  codes: (number | null)[];
  signals: (NodeJS.Signals | null)[];
  /** Each worker's group peak (memory.max_usage_in_bytes). */
  peakBytes: number[];
  /** Each worker's group OOM kills. */
  oomKills: number[];
  stderr: string[];
  seconds: number;
}

export async function runCappedCluster(o: { args: string[]; workers: number; capBytes: number | null; timeoutMs?: number; tag: string }): Promise<CappedRun> {
  const port = await freePort();
  const caps = Array.from({ length: o.workers }, (_, r) => MemoryCap.create(`${o.tag}-r${r}`, o.capBytes ?? NO_CAP));
  const env = { ...process.env, SMOLCLUSTER_TOKEN: process.env.SMOLCLUSTER_TOKEN ?? 'capped-cluster-token-0123456789abcdef' };
  const stderr: string[] = Array(o.workers).fill('');
  const t0 = Date.now();
  const kids = caps.map((cap, r) => {
    const argv = [process.execPath, CLI, 'worker', '--rank', String(r), '--world-size', String(o.workers), '--master', `127.0.0.1:${port}`, ...o.args];
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cap.dir, ...argv], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr[r] += s));
    return { child, done: new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (code, signal) => resolve([code, signal]))) };
  });
  const timer = setTimeout(() => kids.forEach((k) => k.child.kill('SIGKILL')), o.timeoutMs ?? 300_000);
  // One worker down (killed for memory): the others would wait for it until --timeout; 10 s to say so, then they go too.
  let reaper: NodeJS.Timeout | undefined;
  for (const k of kids) {
    void k.done.then(([code]) => {
      if (code !== 0 && !reaper) reaper = setTimeout(() => kids.forEach((x) => x.child.kill('SIGKILL')), 10_000);
    });
  }
  try {
    const exits = await Promise.all(kids.map((k) => k.done));
    return {
      codes: exits.map(([c]) => c), signals: exits.map(([, s]) => s), stderr,
      peakBytes: caps.map((c) => c.peakBytes()), oomKills: caps.map((c) => c.oomKills()), seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(reaper);
    for (const k of kids) if (k.child.exitCode === null && k.child.signalCode === null) k.child.kill('SIGKILL');
    for (const c of caps) c.remove();
  }
}

