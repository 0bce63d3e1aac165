/**
 * bench:chaos — an elastic 4-worker local run (MNIST MLP) under a seeded schedule of faults, beside
 * a fault-free run with the same seed, both in this invocation.
 *
 * Faults, at random steps (seeded), on a random current member: SIGKILL (the launcher restarts the
 * worker: --max-restarts), SIGSTOP then SIGCONT after --timeout + 1.5 s (the group excludes the
 * stalled worker, which rejoins when continued), SIGTERM (an orderly death; restarted). A fault is
 * injected only while more than --min-workers are members and the previous fault has been handled.
 * Any member may be hit, rank 0 included (the store lives in the launcher); the report counts the
 * faults on id 0 and on the current group rank 0 (the member the others take state from).
 *
 * Reported: faults injected and survived (steps recorded after the fault, and the run ended ok),
 * membership changes, steps lost to rollback (events.jsonl), whether every sample of every epoch was
 * trained on exactly once (checked from metrics.jsonl by src/validate/exactly_once.ts; "unrecorded
 * shares" are shares of workers killed between finishing a step and writing its record), hangs (no
 * step recorded for 3 × --timeout + 15 s: the run is killed and counted), and the final test
 * accuracy of both runs.
 *
 *   flock /tmp/smolcluster-bench.lock npm run bench:chaos -- [--faults 24] [--seed 1] [--epochs 2] [--timeout 3]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../src/util/rng.js';
import { checkExactlyOnce } from '../src/validate/exactly_once.js';
import { renderTable } from './lib/table.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MNIST_TRAIN = 60_000;

const { values: a } = parseArgs({
  options: {
    faults: { type: 'string', default: '24' },
    seed: { type: 'string', default: '1' },
    epochs: { type: 'string', default: '2' },
    workers: { type: 'string', default: '4' },
    'min-workers': { type: 'string', default: '2' },
    timeout: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});
const opts = {
  faults: Number(a.faults), seed: Number(a.seed), epochs: Number(a.epochs), workers: Number(a.workers),
  minWorkers: Number(a['min-workers']), timeout: Number(a.timeout),
};
const dir = mkdtempSync(join(tmpdir(), 'smolcluster-chaos-'));

type FaultKind = 'kill' | 'stop' | 'term';
interface Fault {
  kind: FaultKind;
  rank: number;
  /** The target was the current epoch's group rank 0 (the member the others take state from). */
  leader: boolean;
  atStep: number;
  time: number;
  survived?: boolean;
}

interface RunReport {
  name: string;
  code: number | null;
  seconds: number;
  faults: Fault[];
  hangs: number;
  accuracy: number | null;
  status: string;
  changes: number;
  stepsLost: number;
  exactly: ReturnType<typeof checkExactlyOnce> | null;
}

function lines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return []; // a line being written
    }
  });
}

/** Who is running now, as the launcher and the members report it. */
function clusterView(runDir: string): { pids: Map<number, number>; members: number[]; epoch: number } {
  const pids = new Map<number, number>();
  let members: number[] = [];
  let epoch = 0;
  for (const e of lines(join(runDir, 'events.jsonl'))) {
    if ((e.kind === 'worker_started' || e.kind === 'worker_restarted') && typeof e.rank === 'number') pids.set(e.rank, e.pid as number);
    if (e.kind === 'worker_lost' && typeof e.rank === 'number') pids.delete(e.rank);
    if (e.kind === 'membership' && (e.epoch as number) > epoch) {
      epoch = e.epoch as number;
      members = e.members as number[];
    }
  }
  return { pids, members, epoch };
}

function lastStep(runDir: string): { step: number; records: number } {
  const recs = lines(join(runDir, 'metrics.jsonl')).filter((r) => r.kind === 'step');
  return { step: recs.length ? Math.max(...recs.map((r) => r.step as number)) : -1, records: recs.length };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(name: string, chaos: boolean): Promise<RunReport> {
  const runDir = join(dir, name);
  const args = [CLI, 'train', '--workers', String(opts.workers), '--elastic', '--min-workers', String(opts.minWorkers), '--max-restarts', '1000',
    '--epochs', String(opts.epochs), '--seed', String(opts.seed), '--timeout', String(opts.timeout), '--threads', '1',
    '--experiments-dir', dir, '--name', name];
  const started = Date.now();
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const rng = new Rng(opts.seed * 7919 + 17);
  const faults: Fault[] = [];
  const hangMs = (3 * opts.timeout + 15) * 1000;
  let hangs = 0;
  let seen = { step: -1, records: 0 };
  let progressAt = Date.now();
  let nextAt = 20 + rng.int(30);
  let pending: { fault: Fault; epoch: number; cont?: number } | null = null;
  while (!done) {
    await sleep(100);
    const now = lastStep(runDir);
    if (now.records !== seen.records) progressAt = Date.now();
    seen = now;
    if (Date.now() - progressAt > hangMs) {
      hangs++;
      process.stderr.write(`chaos: ${name}: no step for ${hangMs} ms: a hang; stopping the run\n`);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      break;
    }
    if (!chaos) continue;
    const view = clusterView(runDir);
    if (pending) {
      // Handled: the stalled worker continued, and the group re-formed after the fault.
      if (pending.cont !== undefined && Date.now() >= pending.cont) {
        try {
          process.kill(view.pids.get(pending.fault.rank) ?? -1, 'SIGCONT');
        } catch {
          // it may have been replaced
        }
        pending.cont = undefined;
      }
      if (pending.cont === undefined && view.epoch > pending.epoch) pending = null;
      continue;
    }
    if (faults.length >= opts.faults || now.step < nextAt || view.members.length <= opts.minWorkers) continue;
    const rank = view.members[rng.int(view.members.length)];
    const pid = view.pids.get(rank);
    if (pid === undefined) continue;
    const kind = (['kill', 'stop', 'term'] as const)[rng.int(3)];
    const fault: Fault = { kind, rank, leader: rank === view.members[0], atStep: now.step, time: Date.now() };
    try {
      process.kill(pid, kind === 'kill' ? 'SIGKILL' : kind === 'stop' ? 'SIGSTOP' : 'SIGTERM');
    } catch {
      continue;
    }
    faults.push(fault);
    process.stderr.write(`chaos: fault ${faults.length}: ${kind} rank ${rank} (pid ${pid}) at step ${now.step}\n`);
    pending = { fault, epoch: view.epoch, cont: kind === 'stop' ? Date.now() + (opts.timeout + 1.5) * 1000 : undefined };
    nextAt = now.step + 15 + rng.int(30);
  }
  const code = await exited;
  const events = lines(join(runDir, 'events.jsonl'));
  const end = events.filter((e) => e.kind === 'run_end').at(-1);
  const steps = lines(join(runDir, 'metrics.jsonl')).filter((r) => r.kind === 'step').map((r) => r.time as number);
  const ok = code === 0 && end?.status === 'ok';
  for (const f of faults) f.survived = ok && steps.some((t) => t > f.time);
  const result = existsSync(join(runDir, 'result.json')) ? JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as { test_accuracy: number } : null;
  const changes = events.filter((e) => e.kind === 'membership');
  if (!ok) process.stderr.write(`chaos: ${name} failed (exit ${code}):\n${stderr.split('\n').slice(-8).join('\n')}\n`);
  return {
    name, code, seconds: (Date.now() - started) / 1000, faults, hangs, accuracy: result?.test_accuracy ?? null, status: String(end?.status ?? 'none'),
    changes: changes.length - 1, stepsLost: changes.reduce((s, e) => s + Number(e.steps_lost ?? 0), 0),
    exactly: existsSync(join(runDir, 'metrics.jsonl')) ? checkExactlyOnce(join(runDir, 'metrics.jsonl'), MNIST_TRAIN, opts.seed) : null,
  };
}

async function main(): Promise<void> {
  process.stderr.write(`chaos: ${opts.workers} workers, ${opts.epochs} epochs of MNIST (MLP), seed ${opts.seed}, --timeout ${opts.timeout}; runs in ${dir}\n`);
  const clean = await run('fault-free', false);
  const chaos = await run('chaos', true);
  const pct = (x: number | null): string => (x === null ? '—' : `${(x * 100).toFixed(2)}%`);
  const row = (r: RunReport): string[] => {
    const by = (k: FaultKind): number => r.faults.filter((f) => f.kind === k).length;
    return [
      r.name, String(r.faults.length), `${by('kill')}/${by('stop')}/${by('term')}`,
      `${r.faults.filter((f) => f.rank === 0).length}/${r.faults.filter((f) => f.leader).length}`, String(r.faults.filter((f) => f.survived).length), String(r.changes),
      String(r.stepsLost), r.exactly ? `${r.exactly.epochsExact}/${r.exactly.epochsSeen}${r.exactly.problems.length ? ` (${r.exactly.problems.length} problems)` : ''}` : '—',
      String(r.exactly?.unrecordedShares ?? '—'),
      String(r.hangs), pct(r.accuracy), r.seconds.toFixed(0), r.status,
    ];
  };
  process.stdout.write(`${renderTable(
    [{ header: 'run' }, { header: 'faults' }, { header: 'kill/stop/term' }, { header: 'on id 0 / group rank 0' }, { header: 'survived' }, { header: 'membership changes' }, { header: 'steps rolled back' },
      { header: 'epochs exactly once' }, { header: 'unrecorded shares' }, { header: 'hangs' }, { header: 'test accuracy' }, { header: 's' }, { header: 'status' }],
    [row(clean), row(chaos)],
  )}\n`);
  for (const p of chaos.exactly?.problems.slice(0, 5) ?? []) process.stdout.write(`  exactly-once problem: ${p}\n`);
  const gap = clean.accuracy !== null && chaos.accuracy !== null ? (chaos.accuracy - clean.accuracy) * 100 : NaN;
  process.stdout.write(`accuracy difference (chaos − fault-free): ${gap.toFixed(2)} points (target: within 0.5)\n`);
  process.stdout.write(`${JSON.stringify({ clean: { ...clean, faults: undefined }, chaos: { ...chaos, exactly: { ...chaos.exactly, problems: chaos.exactly?.problems.length } }, gapPoints: gap })}\n`);
  if (!a.keep) rmSync(dir, { recursive: true, force: true });
}

await main();
