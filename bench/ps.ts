/**
 * npm run bench:ps -- [--quick] [--only ps,async-ps,allreduce]
 *
 * SmolCluster's own setting: 2 workers train the MNIST MLP (784-128-10) at batch 32 each, on this
 * machine, through the real CLI (`train --workers 2 --strategy S`, one thread per process; ps and
 * async-ps add a server process). For each strategy:
 *
 *   - samples/s: median over windows of the step end times at rank 0 (the server, or rank 0 of
 *     all-reduce), each step counting the samples it applied; a run without evaluation;
 *   - time to 97% test accuracy: a second run evaluating every 6,400 samples; the training time
 *     until the first evaluation at ≥ 97%, evaluation pauses excluded.
 *
 * The reference is the original Python SmolCluster in this setting on a 2-core machine: ≈457
 * samples/s (95.3% test accuracy at step 800). Target: ps ≥ 20× that. Last line: one JSON object.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmtNum, fmtRatio, machineInfo, packageRoot, parseOnly, renderTable, threadEnv } from './lib/index.js';
import { windowsFromStepTimes } from './lib/step_windows.js';
import { timeToAccuracy } from './lib/time_to_accuracy.js';

const STRATEGIES = ['ps', 'async-ps', 'allreduce'] as const;
type Name = (typeof STRATEGIES)[number];
const SMOLCLUSTER_PY_SAMPLES_PER_SEC = 457;
const TARGET_RATIO = 20;
const WORKERS = 2;
const BATCH = 32;
const ROOT = packageRoot(import.meta.url);

interface Line {
  kind: string;
  rank: number;
  step: number;
  time: number;
  samples: number;
  compute_ms: number;
  comm_ms: number;
  wait_ms: number;
  test_accuracy?: number;
}

function run(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], { env: threadEnv(1), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('exit', (code) => resolve({ code, stderr, stdout }));
  });
}

async function train(name: Name, extra: string[]): Promise<Line[]> {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-ps-'));
  try {
    const args = ['train', '--workers', String(WORKERS), '--strategy', name, '--batch-size', String(BATCH), '--threads', '1',
      '--name', 'b', '--experiments-dir', dir, '--checksum-every', '0', ...extra];
    const r = await run(args);
    if (r.code !== 0) throw new Error(`${name}: smolcluster train failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return readFileSync(join(dir, 'b', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Samples applied per rank-0 step: async-ps applies one worker's push, the others a global batch. */
function samplesPerStep(name: Name): number {
  return name === 'async-ps' ? BATCH : BATCH * WORKERS;
}

async function throughput(name: Name, quick: boolean): Promise<number> {
  const steps = quick ? 800 : 1600;
  const lines = await train(name, ['--max-steps', String(name === 'async-ps' ? steps : steps), '--eval-every', '0', '--epochs', '3']);
  const ends = lines.filter((l) => l.kind === 'step' && l.rank === 0).sort((a, b) => a.step - b.step).map((l) => l.time);
  return windowsFromStepTimes(ends, samplesPerStep(name)).median;
}

interface Accuracy {
  seconds: number | null;
  samples: number | null;
  best: number;
  final: number;
}

async function timeTo97(name: Name, quick: boolean): Promise<Accuracy> {
  const every = 6400 / samplesPerStep(name);
  const lines = await train(name, ['--epochs', quick ? '1' : '2', '--eval-every', String(every)]);
  const steps = lines.filter((l) => l.kind === 'step' && l.rank === 0).sort((a, b) => a.step - b.step);
  const evals = lines.filter((l) => l.kind === 'eval').sort((a, b) => a.step - b.step);
  const start = steps[0].time - (steps[0].compute_ms + steps[0].comm_ms + steps[0].wait_ms);
  const hit = timeToAccuracy(start, new Map(steps.map((s) => [s.step, s.time])), evals.map((e) => ({ step: e.step, accuracy: e.test_accuracy ?? 0, time: e.time })), 0.97);
  const final = evals.at(-1)?.test_accuracy ?? 0;
  return { seconds: hit.seconds, samples: hit.steps === null ? null : hit.steps * samplesPerStep(name), best: hit.best, final };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const onlyAt = argv.indexOf('--only');
  const names = parseOnly(onlyAt >= 0 ? argv[onlyAt + 1] : undefined, STRATEGIES);
  const rows: Array<{ strategy: Name; samples_per_sec: number; vs_smolcluster: number; to97: Accuracy }> = [];
  for (const name of names) {
    process.stderr.write(`bench:ps: ${name}: throughput ...\n`);
    const sps = await throughput(name, quick);
    process.stderr.write(`bench:ps: ${name}: time to 97% ...\n`);
    const acc = await timeTo97(name, quick);
    rows.push({ strategy: name, samples_per_sec: sps, vs_smolcluster: sps / SMOLCLUSTER_PY_SAMPLES_PER_SEC, to97: acc });
  }
  const table = renderTable(
    [{ header: 'strategy' }, { header: 'samples/s', align: 'right' }, { header: 'vs SmolCluster (457/s)', align: 'right' },
      { header: 'time to 97%', align: 'right' }, { header: 'samples to 97%', align: 'right' }, { header: 'best acc', align: 'right' }, { header: 'target' }],
    rows.map((r) => [r.strategy, fmtNum(r.samples_per_sec, 0), fmtRatio(r.vs_smolcluster),
      r.to97.seconds === null ? 'not reached' : `${r.to97.seconds.toFixed(1)} s`, fmtNum(r.to97.samples, 0),
      `${(r.to97.best * 100).toFixed(2)}%`, r.strategy === 'ps' ? `≥ ${TARGET_RATIO}×` : '']),
  );
  process.stdout.write(`MNIST MLP, ${WORKERS} workers at batch ${BATCH} each on 127.0.0.1, 1 thread per process (ps / async-ps: + a server process)\n${table}\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'ps', workers: WORKERS, batch: BATCH, reference_samples_per_sec: SMOLCLUSTER_PY_SAMPLES_PER_SEC, results: rows, machine: machineInfo() })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:ps: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
