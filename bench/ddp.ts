/**
 * npm run bench:ddp -- [--workers 2] [--batches 32,256] [--precisions fp32,bf16] [--quick] [--no-torch] [--no-throughput]
 *                      [--no-tta] [--target 0.98] [--eval-every 100] [--tta-steps 937]
 *
 * 1. Throughput: data-parallel MNIST MLP (784-128-10, SGD momentum 0.9) training of a local cluster,
 *    one thread per worker, at each per-rank batch size: ours through the real CLI
 *    (`train --workers N`), and PyTorch DDP over Gloo (bench/reference/ddp_torch.py) when a Python
 *    can import torch. Both record the wall-clock end of every step; both are windowed the same way
 *    (bench/lib/step_windows.ts) and reported as cluster samples/s (all ranks) with the ratio ours/torch.
 *    Each batch size is run at each of --precisions: bf16 is `train --precision bf16` (docs/PRECISION.md)
 *    against DDP with torch.autocast('cpu', dtype=torch.bfloat16) (ddp_torch.py --precision bf16);
 *    our row's precision is the one result.json says the run trained in.
 * 2. Time to accuracy (the headline of issue 13 §7): the CNN (src/nn/models/cnn.ts) on N workers,
 *    batch 32 each, SGD lr 0.02 momentum 0.9 at a constant rate, every rank evaluating the whole
 *    MNIST test set every 100 steps; ours (`train --model cnn --schedule constant --eval-every 100`)
 *    and PyTorch DDP (ddp_torch.py --model cnn --eval-every 100) alike. The figure is the training
 *    time until the first evaluation at ≥ 98%, evaluation pauses excluded (bench/lib/time_to_accuracy.ts),
 *    as the ratio ours/torch (target ≤ 0.5×); beside it the wall time from launching the processes
 *    to that evaluation's result, start-up and evaluations included. One seed each: the step at
 *    which 98% is first seen differs between the two (different initial weights and data order).
 *    Where the training time went, alike for both (bench/lib/tta_steps.ts): the first step, the
 *    median and mean of the others, and the time the slow ones (> 2× the median) added; for ours
 *    also the mean compute / communication / peer-wait split of rank 0's steps (JSON only). And
 *    per rank process, over the steps before the first evaluation, the ms per step it spent on a
 *    CPU and runnable but waiting for one (bench/lib/sched_sampler.ts: Linux schedstat): on the
 *    shared 2-core machine the second is what other processes' load adds to each step.
 * Last line: one JSON object with every figure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from './lib/free_port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMnistDir } from '../src/data/mnist.js';
import { findPythonWith, fmtNum, fmtRatio, machineInfo, mean, packageRoot, ratio, renderTable, threadEnv } from './lib/index.js';
import { windowsFromStepTimes } from './lib/step_windows.js';
import { type TimeToAccuracy, timeToAccuracy } from './lib/time_to_accuracy.js';
import { type SchedShare, SchedSampler } from './lib/sched_sampler.js';
import { type StepProfile, stepProfile } from './lib/tta_steps.js';

type Precision = 'fp32' | 'bf16';

interface Options {
  workers: number;
  batches: number[];
  precisions: Precision[];
  quick: boolean;
  torch: boolean;
  throughput: boolean;
  tta: boolean;
  target: number;
  evalEvery: number;
  /** Most steps per rank a time-to-accuracy run takes (default: one epoch of its shard). */
  ttaSteps: number;
}

const TTA_BATCH = 32;

function parseArgs(argv: string[]): Options {
  const o: Options = { workers: 2, batches: [32, 256], precisions: ['fp32', 'bf16'], quick: false, torch: true, throughput: true, tta: true, target: 0.98, evalEvery: 100, ttaSteps: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--workers') o.workers = Number(argv[++i]);
    else if (a === '--batches') o.batches = argv[++i].split(',').map(Number);
    else if (a === '--precisions') o.precisions = argv[++i].split(',') as Precision[];
    else if (a === '--quick') o.quick = true;
    else if (a === '--no-torch') o.torch = false;
    else if (a === '--no-throughput') o.throughput = false;
    else if (a === '--no-tta') o.tta = false;
    else if (a === '--target') o.target = Number(argv[++i]);
    else if (a === '--eval-every') o.evalEvery = Number(argv[++i]);
    else if (a === '--tta-steps') o.ttaSteps = Number(argv[++i]);
    else throw new Error(`bench:ddp: unknown argument ${a}`);
  }
  if (!(o.workers >= 2) || o.batches.some((b) => !(b >= 1))) throw new Error('bench:ddp: --workers must be ≥ 2 and batches positive');
  if (o.precisions.length === 0 || o.precisions.some((p) => p !== 'fp32' && p !== 'bf16')) throw new Error('bench:ddp: --precisions takes fp32 and/or bf16, comma-separated');
  if (!(o.target > 0 && o.target < 1)) throw new Error('bench:ddp: --target must be an accuracy in (0, 1)');
  if (!(Number.isInteger(o.evalEvery) && o.evalEvery >= 1)) throw new Error('bench:ddp: --eval-every must be a positive integer');
  if (!(Number.isInteger(o.ttaSteps) && o.ttaSteps >= 0)) throw new Error('bench:ddp: --tta-steps must be a non-negative integer');
  if (o.ttaSteps === 0) o.ttaSteps = Math.floor(60000 / o.workers / TTA_BATCH);
  return o;
}

/** Enough steps for a warm-up and 7 windows of roughly half a second each. */
function stepsFor(batch: number, quick: boolean): number {
  const steps = batch <= 64 ? 2500 : 800;
  return quick ? Math.round(steps / 2) : steps;
}

const ROOT = packageRoot(import.meta.url);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, onSpawn?: (pid: number) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function ours(o: Options, batch: number, precision: Precision): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-ddp-'));
  try {
    const cli = join(ROOT, 'dist/src/cli/main.js');
    // Epochs high enough that --max-steps, not the dataset size, ends the run (as in the torch script).
    const args = [cli, 'train', '--workers', String(o.workers), '--batch-size', String(batch), '--max-steps', String(stepsFor(batch, o.quick)),
      '--epochs', '1000', '--threads', '1', '--name', 'ddp', '--experiments-dir', dir, '--precision', precision];
    const r = await run(process.execPath, args, threadEnv(1));
    if (r.code !== 0) throw new Error(`smolcluster train failed: ${r.stderr.trim().split('\n').pop()}`);
    const trained = (JSON.parse(readFileSync(join(dir, 'ddp', 'result.json'), 'utf8')) as { precision?: string }).precision ?? 'fp32';
    if (trained !== precision) throw new Error(`smolcluster train --precision ${precision} trained in ${trained} (result.json)`);
    const ends = readFileSync(join(dir, 'ddp', 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { kind: string; rank: number; step: number; time: number })
      .filter((r) => r.kind === 'step' && r.rank === 0)
      .sort((a, b) => a.step - b.step)
      .map((r) => r.time);
    return windowsFromStepTimes(ends, batch * o.workers).median;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


async function torchDdp(o: Options, python: string, batch: number, precision: Precision): Promise<number> {
  const port = await freePort();
  const script = join(ROOT, 'bench/reference/ddp_torch.py');
  const args = [script, '--data-dir', defaultMnistDir(), '--batch-size', String(batch), '--steps', String(stepsFor(batch, o.quick)), '--precision', precision];
  const ranks = Array.from({ length: o.workers }, (_, rank) =>
    run(python, args, threadEnv(1, { RANK: String(rank), WORLD_SIZE: String(o.workers), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) })));
  const [first, ...rest] = await Promise.all(ranks);
  for (const r of [first, ...rest]) if (r.code !== 0) throw new Error(`torch DDP failed: ${r.stderr.trim().split('\n').pop()}`);
  const out = JSON.parse(first.stdout.trim().split('\n').pop() ?? '{}') as { step_end_times_ms: number[] };
  return windowsFromStepTimes(out.step_end_times_ms, batch * o.workers).median;
}

interface TtaRun extends TimeToAccuracy {
  /** Wall seconds from launching the processes to the result of the evaluation that reached the target. */
  launchSeconds: number | null;
  stepsRun: number;
  /** The counted steps' first, median and mean time (tta_steps.ts). */
  profile: StepProfile;
  /** Ours: rank 0's mean compute / communication / peer wait per counted step (metrics.jsonl). */
  split?: { computeMs: number; commMs: number; waitMs: number };
  /** Per rank process and step before the first evaluation: ms on a CPU and ms waiting for one (sched_sampler.ts). */
  sched: SchedShare | null;
}

/** The span the CPU figures cover: from the first step's start to the last step before the first evaluation (or the hit). */
function schedSpan(sampler: SchedSampler, startMs: number, ends: ReadonlyMap<number, number>, o: Options, hitSteps: number | null): SchedShare | null {
  const last = Math.min(o.evalEvery, hitSteps ?? Infinity, ends.size) - 1;
  const endMs = ends.get(last);
  return endMs === undefined ? null : sampler.over(startMs, endMs, [...ends.values()]);
}

interface MetricLine { kind: string; rank: number; step: number; time: number; compute_ms: number; comm_ms: number; wait_ms: number; test_accuracy?: number }

async function oursToAccuracy(o: Options): Promise<TtaRun> {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-ddp-'));
  try {
    const cli = join(ROOT, 'dist/src/cli/main.js');
    const args = [cli, 'train', '--workers', String(o.workers), '--model', 'cnn', '--batch-size', String(TTA_BATCH), '--max-steps', String(o.ttaSteps),
      '--epochs', '1000', '--lr', '0.02', '--momentum', '0.9', '--schedule', 'constant', '--eval-every', String(o.evalEvery),
      '--threads', '1', '--name', 'tta', '--experiments-dir', dir];
    const launched = Date.now();
    let sampler: SchedSampler | null = null;
    // The launcher's workers (the ranks), not the launcher itself, as torch's two rank processes.
    const r = await run(process.execPath, args, threadEnv(1), (pid) => (sampler = new SchedSampler([pid], true)));
    (sampler as SchedSampler | null)?.stop();
    if (r.code !== 0) throw new Error(`smolcluster train (cnn) failed: ${r.stderr.trim().split('\n').pop()}`);
    const lines = readFileSync(join(dir, 'tta', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricLine);
    const steps = lines.filter((l) => l.kind === 'step' && l.rank === 0).sort((a, b) => a.step - b.step);
    const start = steps[0].time - (steps[0].compute_ms + steps[0].comm_ms + steps[0].wait_ms);
    const evals = lines.filter((l) => l.kind === 'eval').map((l) => ({ step: l.step, accuracy: l.test_accuracy ?? 0, time: l.time }));
    const ends = new Map(steps.map((l) => [l.step, l.time]));
    const hit = timeToAccuracy(start, ends, evals, o.target);
    const counted = steps.filter((l) => l.step < (hit.steps ?? steps.length));
    const split = { computeMs: mean(counted.map((l) => l.compute_ms)), commMs: mean(counted.map((l) => l.comm_ms)), waitMs: mean(counted.map((l) => l.wait_ms)) };
    return { ...hit, launchSeconds: hit.reachedAt === null ? null : (hit.reachedAt - launched) / 1000, stepsRun: steps.length,
      profile: stepProfile(start, ends, evals, hit.steps ?? steps.length), split, sched: sampler && schedSpan(sampler, start, ends, o, hit.steps) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function torchToAccuracy(o: Options, python: string): Promise<TtaRun> {
  const port = await freePort();
  const script = join(ROOT, 'bench/reference/ddp_torch.py');
  const args = [script, '--data-dir', defaultMnistDir(), '--model', 'cnn', '--batch-size', String(TTA_BATCH), '--steps', String(o.ttaSteps),
    '--eval-every', String(o.evalEvery), '--target', String(o.target)];
  const launched = Date.now();
  const pids: number[] = [];
  const ranks = Array.from({ length: o.workers }, (_, rank) =>
    run(python, args, threadEnv(1, { RANK: String(rank), WORLD_SIZE: String(o.workers), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) }), (pid) => pids.push(pid)));
  const sampler = new SchedSampler(pids);
  const exits = await Promise.all(ranks);
  sampler.stop();
  for (const r of exits) if (r.code !== 0) throw new Error(`torch DDP (cnn) failed: ${r.stderr.trim().split('\n').pop()}`);
  const out = JSON.parse(exits[0].stdout.trim().split('\n').pop() ?? '{}') as { step_end_times_ms: number[]; start_ms: number; evals: Array<{ step: number; accuracy: number; time_ms: number }> };
  const ends = new Map(out.step_end_times_ms.map((t, i) => [i, t]));
  const evals = out.evals.map((e) => ({ step: e.step, accuracy: e.accuracy, time: e.time_ms }));
  const hit = timeToAccuracy(out.start_ms, ends, evals, o.target);
  return { ...hit, launchSeconds: hit.reachedAt === null ? null : (hit.reachedAt - launched) / 1000, stepsRun: out.step_end_times_ms.length,
    profile: stepProfile(out.start_ms, ends, evals, hit.steps ?? out.step_end_times_ms.length), sched: schedSpan(sampler, out.start_ms, ends, o, hit.steps) };
}

function ttaTable(o: Options, mine: TtaRun, ref: TtaRun | null): string {
  const row = (name: string, r: TtaRun): string[] => [name, r.seconds === null ? `not reached in ${r.stepsRun} steps` : `${r.seconds.toFixed(1)} s`,
    r.steps === null ? '—' : String(r.steps), r.evalSeconds.toFixed(1), r.launchSeconds === null ? '—' : `${r.launchSeconds.toFixed(1)} s`, `${(100 * r.best).toFixed(2)}%`,
    `${r.profile.firstMs.toFixed(0)} / ${r.profile.medianMs.toFixed(1)} / ${r.profile.meanMs.toFixed(1)}`, r.profile.tailSeconds.toFixed(1),
    r.sched ? `${r.sched.cpuMs.toFixed(1)} / ${r.sched.runQueueMs.toFixed(1)}` : '—'];
  const table = renderTable(
    [{ header: 'run' }, { header: `train time to ${(100 * o.target).toFixed(0)}%`, align: 'right' }, { header: 'steps/rank', align: 'right' },
      { header: 'eval s (excluded)', align: 'right' }, { header: 'wall from launch', align: 'right' }, { header: 'best acc', align: 'right' },
      { header: 'step ms first / median / mean', align: 'right' }, { header: 'tail s (> 2× median)', align: 'right' },
      { header: 'ms/step on CPU / waiting for CPU', align: 'right' }],
    [row('smolcluster', mine), ...(ref ? [row('torch DDP (gloo)', ref)] : [])],
  );
  const r = ref && mine.seconds !== null && ref.seconds !== null ? mine.seconds / ref.seconds : null;
  return `${table}\nours/torch train time: ${fmtRatio(r)} (target ≤ 0.50×)\n`;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const probe = o.torch ? findPythonWith('torch') : { found: null, reason: 'disabled by --no-torch' };
  if (!probe.found) process.stderr.write(`bench:ddp: PyTorch reference skipped (${probe.reason})\n`);
  const rows: { batch: number; precision: Precision; ours: number; torch: number | null; ratio: number | null }[] = [];
  for (const batch of o.throughput ? o.batches : []) {
    for (const precision of o.precisions) {
      process.stderr.write(`bench:ddp: ${o.workers} workers, batch ${batch} per rank, ${precision} ...\n`);
      const mine = await ours(o, batch, precision);
      const ref = probe.found ? await torchDdp(o, probe.found.python, batch, precision) : null;
      rows.push({ batch, precision, ours: mine, torch: ref, ratio: ratio(mine, ref) });
    }
  }
  const table = renderTable(
    [{ header: 'batch/rank' }, { header: 'precision' }, { header: 'smolcluster samples/s', align: 'right' }, { header: 'torch DDP (gloo)', align: 'right' }, { header: 'ratio', align: 'right' }, { header: 'target' }],
    rows.map((r) => [String(r.batch), r.precision === 'bf16' ? 'bf16 (torch: autocast)' : 'fp32', fmtNum(r.ours, 0), fmtNum(r.torch, 0), fmtRatio(r.ratio), '≥ 1.00×']),
  );
  if (rows.length) process.stdout.write(`MNIST MLP data-parallel training, ${o.workers} workers on 127.0.0.1, 1 thread each (cluster samples/s, median of 7 windows)\n${table}\n`);
  let tta: { ours: TtaRun; torch: TtaRun | null } | null = null;
  if (o.tta) {
    process.stderr.write(`bench:ddp: time to ${o.target} test accuracy, CNN, ${o.workers} workers: smolcluster ...\n`);
    const mine = await oursToAccuracy(o);
    if (probe.found) process.stderr.write('bench:ddp: time to accuracy: torch DDP ...\n');
    const ref = probe.found ? await torchToAccuracy(o, probe.found.python) : null;
    tta = { ours: mine, torch: ref };
    process.stdout.write(`\nTime to ${(100 * o.target).toFixed(0)}% MNIST test accuracy, CNN, ${o.workers} workers on 127.0.0.1, batch ${TTA_BATCH} each, SGD lr 0.02 momentum 0.9, 1 thread each, evaluation every ${o.evalEvery} steps\n${ttaTable(o, mine, ref)}`);
  }
  const ttaRatio = tta && tta.torch && tta.ours.seconds !== null && tta.torch.seconds !== null ? tta.ours.seconds / tta.torch.seconds : null;
  process.stdout.write(`${JSON.stringify({ bench: 'ddp', workers: o.workers, results: rows, timeToAccuracy: tta && { target: o.target, evalEvery: o.evalEvery, batch: TTA_BATCH, ...tta, ratio: ttaRatio }, torch: probe.found, machine: machineInfo() })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:ddp: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
