/**
 * npm run bench:threads -- [--quick] [--rounds 2] [--no-sweep]
 *
 * Does a second thread ever hurt? (issue 13 §3.) The native backend in children of its own, one
 * after the other and interleaved over rounds (windows pooled): 1 thread; 2 threads with the kernels'
 * size thresholds (src/native/threads.h: below them a kernel stays on one thread); and 2 threads
 * forced to fork at every size (SMOLCLUSTER_GRAIN_SCALE=0, a bench-only knob); and the default
 * (no --threads: src/train/threads.ts, the cores' share kept only where its calibration finds it faster).
 *
 *  1. Workloads: bench:engine's (MLP batch 32 and 256, CNN batch 64, matmul): rate at 2 threads over
 *     rate at 1 thread. The claim "--threads 2 is never slower" holds where that is ≥ 1 within the windows' spread;
 *     "the default picks what is fastest" where the default's rate is the faster of the two within it.
 *  2. Sweep: per kernel family, time per call at growing sizes, at 1 thread, 2 threads forced to
 *     fork, and 2 threads under the thresholds. The crossover is the smallest size from which forking
 *     wins at every larger size; a threshold is right when it lies at or above the crossover.
 * Last line: one JSON object with every figure.
 */
import { fileURLToPath } from 'node:url';
import { type WindowPlan, fmtNum, fmtRatio, machineInfo, mergeWindows, renderTable, runJsonChild, runWindows, scalePlan, threadEnv } from './lib/index.js';
import { IDS, type Measured, type WorkloadId, WORKLOADS, measure, unitOf } from './engine_workloads.js';
import type { Backend } from '../src/tensor/backend.js';
import { setBackend } from '../src/tensor/index.js';
import { chooseThreads } from '../src/train/threads.js';

const ADAM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: true, step: 10 };
const SGD = { lr: 0.01, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, firstStep: false };

/** A kernel family at one size: what it runs, and the threshold (in its own units) where it forks today. */
interface SweepKernel {
  name: string;
  unit: string;
  sizes: number[];
  /** Work at which the kernel forks under the default thresholds (2 × grain), for the table. */
  forksAt: string;
  prepare: (k: Backend, size: number) => () => void;
}

const FLOATS = [4096, 16384, 65536, 262144, 1048576, 4194304];
const buffers = (n: number, count: number): Float32Array[] =>
  Array.from({ length: count }, (_, j) => Float32Array.from({ length: n }, (_, i) => 0.5 + 0.25 * Math.sin(i * 0.001 + j)));

const SWEEP: SweepKernel[] = [
  { name: 'add (elementwise)', unit: 'floats', sizes: FLOATS, forksAt: '1,048,576 floats', prepare: (k, n) => {
    const [a, b, c] = buffers(n, 3);
    return () => k.binary('add', a, [1], b, [1], c, [n]);
  } },
  { name: 'relu (elementwise)', unit: 'floats', sizes: FLOATS, forksAt: '1,048,576 floats', prepare: (k, n) => {
    const [a, b] = buffers(n, 2);
    return () => k.unary('relu', a, b);
  } },
  { name: 'sgdStep (momentum)', unit: 'params', sizes: FLOATS, forksAt: '1,048,576 params', prepare: (k, n) => {
    const [p, g, m] = buffers(n, 3);
    return () => k.sgdStep(p, g, m, SGD);
  } },
  { name: 'adamStep (AdamW)', unit: 'params', sizes: FLOATS, forksAt: '1,048,576 params', prepare: (k, n) => {
    const [p, g, m, v] = buffers(n, 4);
    return () => k.adamStep(p, g, m, v, ADAM);
  } },
  { name: 'gemm [M,784]@[784,128]', unit: 'rows M', sizes: [2, 8, 32, 128, 512], forksAt: 'M ≥ 320 (64 MFLOP)', prepare: (k, M) => {
    const [A, B, C] = [buffers(M * 784, 1)[0], buffers(784 * 128, 1)[0], new Float32Array(M * 128)];
    return () => k.gemm(false, false, M, 128, 784, 1, A, 0, B, 0, 0, C, 0, 1);
  } },
];

const PLAN: WindowPlan = { warmupMs: 500, warmupSteps: 5, windows: 5, windowMs: 500 };
const SWEEP_PLAN: WindowPlan = { warmupMs: 150, warmupSteps: 5, windows: 5, windowMs: 150 };

interface ChildReport {
  threads: number;
  /** Why this many threads (the default's choice). */
  source?: string;
  grainScale: string;
  workloads: Partial<Record<WorkloadId, Measured>>;
  /** kernel name → size → calls/s windows. */
  sweep: Record<string, Record<string, Measured>>;
}

function child(threads: number, quick: boolean, sweep: boolean): void {
  const k = setBackend('native');
  const choice = threads > 0 ? { threads, source: 'fixed' } : chooseThreads(undefined);
  k.setThreads(choice.threads);
  const scale = quick ? 0.5 : 1;
  const report: ChildReport = { threads: k.getThreads(), source: choice.source, grainScale: process.env.SMOLCLUSTER_GRAIN_SCALE ?? '1', workloads: {}, sweep: {} };
  for (const id of IDS) report.workloads[id] = measure(id, scalePlan(PLAN, scale));
  for (const s of sweep ? SWEEP : []) {
    report.sweep[s.name] = {};
    for (const size of s.sizes) report.sweep[s.name][String(size)] = { ...runWindows(s.prepare(k, size), 1, scalePlan(SWEEP_PLAN, scale)), unit: 'calls/s' };
  }
  console.log(JSON.stringify(report));
}

/** threads 0: the default (what `train` picks without --threads or SMOLCLUSTER_THREADS). */
interface Config { key: 't1' | 't2' | 't2forced' | 'auto'; threads: number; grainScale?: string; label: string }
const CONFIGS: Config[] = [
  { key: 't1', threads: 1, label: '1 thread' },
  { key: 't2', threads: 2, label: '2 threads (thresholds)' },
  { key: 't2forced', threads: 2, grainScale: '0', label: '2 threads, always fork' },
  { key: 'auto', threads: 0, label: 'default (calibrated)' },
];

async function runChild(c: Config, quick: boolean, sweep: boolean): Promise<ChildReport> {
  const args = [fileURLToPath(import.meta.url), '--child', String(c.threads), ...(quick ? ['--quick'] : []), ...(sweep && c.key !== 'auto' ? [] : ['--no-sweep'])];
  const env = c.threads > 0
    ? threadEnv(c.threads, { SMOLCLUSTER_BACKEND: 'native', ...(c.grainScale ? { SMOLCLUSTER_GRAIN_SCALE: c.grainScale } : {}) })
    : threadEnv(1, { SMOLCLUSTER_BACKEND: 'native', SMOLCLUSTER_THREADS: '', OMP_NUM_THREADS: '', OPENBLAS_NUM_THREADS: '' });
  const r = await runJsonChild<ChildReport>(process.execPath, args, { env, timeoutMs: 600_000 });
  if (!r.value) throw new Error(`bench:threads: ${c.label} child failed: ${r.error ?? 'no report'}`);
  return r.value;
}

function pool(a: ChildReport | undefined, b: ChildReport): ChildReport {
  if (!a) return b;
  const merge = (x: Measured | undefined, y: Measured): Measured => (x ? { ...y, ...mergeWindows(x, y) } : y);
  const workloads = { ...a.workloads };
  for (const id of IDS) if (b.workloads[id]) workloads[id] = merge(a.workloads[id], b.workloads[id]!);
  const sweep = { ...a.sweep };
  for (const [name, sizes] of Object.entries(b.sweep)) {
    sweep[name] = { ...sweep[name] };
    for (const [size, m] of Object.entries(sizes)) sweep[name][size] = merge(sweep[name][size], m);
  }
  return { ...b, source: [a.source, b.source].join(' | '), threads: a.threads === b.threads ? b.threads : NaN, workloads, sweep };
}

/** Relative half-range of a measurement's windows, for "within spread" judgements. */
const spreadOf = (m: Measured | undefined): number => m?.summary.spread ?? NaN;

interface WorkloadRow { id: WorkloadId; t1: number; t2: number; t2forced: number; ratio: number; spread: number; neverSlower: boolean; auto: number; autoVsBest: number; autoFastest: boolean }
interface SweepRow { kernel: string; unit: string; size: number; t1Us: number; forcedSpeedup: number; policySpeedup: number }

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const sweep = !argv.includes('--no-sweep');
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) return child(Number(argv[childAt + 1]), quick, sweep);
  const roundsAt = argv.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : 2;
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 10)) throw new Error('bench:threads: --rounds must be 1..10');
  const machineStart = machineInfo();
  const reports: Partial<Record<Config['key'], ChildReport>> = {};
  for (let r = 0; r < rounds; r++) {
    for (const c of CONFIGS) {
      process.stderr.write(`bench:threads: round ${r + 1}/${rounds}: ${c.label} ...\n`);
      reports[c.key] = pool(reports[c.key], await runChild(c, quick, sweep));
    }
  }
  const [t1, t2, forced, auto] = [reports.t1!, reports.t2!, reports.t2forced!, reports.auto!];
  const rows: WorkloadRow[] = IDS.map((id) => {
    const a = t1.workloads[id]!.median;
    const b = t2.workloads[id]!.median;
    const spread = Math.max(spreadOf(t1.workloads[id]), spreadOf(t2.workloads[id]));
    const d = auto.workloads[id]!.median;
    const autoVsBest = d / Math.max(a, b);
    const autoSpread = Math.max(spread, spreadOf(auto.workloads[id]));
    return { id, t1: a, t2: b, t2forced: forced.workloads[id]!.median, ratio: b / a, spread, neverSlower: b / a >= 1 - spread, auto: d, autoVsBest, autoFastest: autoVsBest >= 1 - autoSpread };
  });
  process.stdout.write(`bench:threads — native backend, median of ${rounds} × windows; load avg ${machineStart.loadAvg1} at start\n`);
  process.stdout.write(`${renderTable(
    [{ header: 'workload' }, { header: 'unit' }, { header: '1 thread', align: 'right' }, { header: '2 threads', align: 'right' }, { header: '2 / 1', align: 'right' },
      { header: 'spread ±', align: 'right' }, { header: 'always fork 2 / 1', align: 'right' }, { header: 'not slower' },
      { header: 'default', align: 'right' }, { header: 'default / faster', align: 'right' }, { header: 'fastest' }],
    rows.map((r) => [WORKLOADS[r.id].label, unitOf(WORKLOADS[r.id]), fmtNum(r.t1, r.id === 'matmul' ? 1 : 0), fmtNum(r.t2, r.id === 'matmul' ? 1 : 0), fmtRatio(r.ratio),
      `${(100 * r.spread).toFixed(0)}%`, fmtRatio(r.t2forced / r.t1), r.neverSlower ? '✓' : '✗', fmtNum(r.auto, r.id === 'matmul' ? 1 : 0), fmtRatio(r.autoVsBest), r.autoFastest ? '✓' : '✗']),
  )}\n`);
  process.stdout.write(`default: ${auto.source}\n`);
  const sweepRows: SweepRow[] = [];
  for (const s of sweep ? SWEEP : []) {
    for (const size of s.sizes) {
      const rate = (rep: ChildReport): number => rep.sweep[s.name][String(size)].median;
      sweepRows.push({ kernel: s.name, unit: s.unit, size, t1Us: 1e6 / rate(t1), forcedSpeedup: rate(forced) / rate(t1), policySpeedup: rate(t2) / rate(t1) });
    }
  }
  const crossovers = (sweep ? SWEEP : []).map((s) => {
    const mine = sweepRows.filter((r) => r.kernel === s.name);
    // Smallest size from which forking wins at every larger size.
    let from: number | null = null;
    for (let i = mine.length - 1; i >= 0 && mine[i].forcedSpeedup > 1; i--) from = mine[i].size;
    return { kernel: s.name, unit: s.unit, crossover: from, forksAt: s.forksAt };
  });
  if (sweepRows.length) {
    process.stdout.write(`\nPer-kernel sweep: µs per call at 1 thread; speed-up of 2 threads forced to fork, and under the thresholds\n`);
    process.stdout.write(`${renderTable(
      [{ header: 'kernel' }, { header: 'size', align: 'right' }, { header: '1 thread µs', align: 'right' }, { header: 'forced 2 / 1', align: 'right' }, { header: 'thresholds 2 / 1', align: 'right' }],
      sweepRows.map((r) => [r.kernel, `${fmtNum(r.size, 0)} ${r.unit}`, fmtNum(r.t1Us, 1), fmtRatio(r.forcedSpeedup), fmtRatio(r.policySpeedup)]),
    )}\n`);
    process.stdout.write(`\n${renderTable(
      [{ header: 'kernel' }, { header: 'forking wins from' }, { header: 'forks today at' }],
      crossovers.map((c) => [c.kernel, c.crossover === null ? 'never (in the sweep)' : `${fmtNum(c.crossover, 0)} ${c.unit}`, c.forksAt]),
    )}\n`);
  }
  process.stdout.write(`${JSON.stringify({ bench: 'threads', rounds, quick, workloads: rows, defaultChoice: { threads: auto.threads, source: auto.source }, sweep: sweepRows, crossovers, machine: { ...machineStart, loadAvg1End: machineInfo().loadAvg1 } })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
