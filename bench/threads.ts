/**
 * npm run bench:threads -- [--quick] [--rounds 2] [--no-sweep] [--paired-only]
 *
 * Does a second thread ever hurt? (issue 13 §3.) The native backend in children of its own, one
 * after the other and interleaved over rounds (windows pooled): 1 thread; 2 threads with the kernels'
 * size thresholds (src/native/threads.h: below them a kernel stays on one thread); and 2 threads
 * forced to fork at every size (SMOLCLUSTER_GRAIN_SCALE=0, a bench-only knob).
 *
 *  1. Workloads: bench:engine's (MLP batch 32 and 256, CNN batch 64, matmul): rate at 2 threads over
 *     rate at 1 thread. The claim "--threads 2 is never slower" holds where that is ≥ 1 within the windows' spread.
 *  1b. Paired, and the default: one more child first makes the default's choice (no --threads:
 *     src/train/engine/threads.ts, the cores' share kept only where its start-up calibration finds it faster),
 *     then times every workload in alternating windows at 1 and 2 threads in that same process, so
 *     load that moves between children cancels out of each pair's 2 / 1. The default "picks what is
 *     fastest" where its choice is the faster side of the median pair ratio (ties within ±5%: either).
 *  2. Sweep: per kernel family, time per call at growing sizes, at 1 thread, 2 threads forced to
 *     fork, and 2 threads under the thresholds. The crossover is the smallest size from which forking
 *     wins at every larger size; a threshold is right when it lies at or above the crossover.
 * Last line: one JSON object with every figure.
 */
import { fileURLToPath } from 'node:url';
import { type WindowPlan, fmtNum, fmtRatio, machineInfo, mergeWindows, renderTable, runJsonChild, runWindows, scalePlan, threadEnv } from './lib/index.js';
import { IDS, type Measured, type WorkloadId, WORKLOADS, measure, stepperOf, unitOf } from './engine_workloads.js';
import type { HostBackend as Backend } from '../src/tensor/backend.js';
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';

import { setBackend } from '../src/tensor/index.js';
import { chooseThreads } from '../src/train/engine/threads.js';

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
  grainScale: string;
  workloads: Partial<Record<WorkloadId, Measured>>;
  /** kernel name → size → calls/s windows. */
  sweep: Record<string, Record<string, Measured>>;
}

function child(threads: number, quick: boolean, sweep: boolean): void {
  const k = hostKernels(setBackend('native'));
  k.setThreads(threads);
  const scale = quick ? 0.5 : 1;
  const report: ChildReport = { threads: k.getThreads(), grainScale: process.env.SMOLCLUSTER_GRAIN_SCALE ?? '1', workloads: {}, sweep: {} };
  for (const id of IDS) report.workloads[id] = measure(id, scalePlan(PLAN, scale));
  for (const s of sweep ? SWEEP : []) {
    report.sweep[s.name] = {};
    for (const size of s.sizes) report.sweep[s.name][String(size)] = { ...runWindows(s.prepare(k, size), 1, scalePlan(SWEEP_PLAN, scale)), unit: 'calls/s' };
  }
  console.log(JSON.stringify(report));
}

interface Config { key: 't1' | 't2' | 't2forced'; threads: number; grainScale?: string; label: string }
const CONFIGS: Config[] = [
  { key: 't1', threads: 1, label: '1 thread' },
  { key: 't2', threads: 2, label: '2 threads (thresholds)' },
  { key: 't2forced', threads: 2, grainScale: '0', label: '2 threads, always fork' },
];

interface PairedReport {
  /** The default's choice in this process, and why. */
  choice: { threads: number; source: string };
  /** Per workload: rates of alternating windows at 1 and 2 threads. */
  pairs: Partial<Record<WorkloadId, { one: number[]; two: number[] }>>;
}

/** Child: the default's choice (calibration), then each workload in alternating 1- and 2-thread windows. */
function pairedChild(quick: boolean): void {
  const k = hostKernels(setBackend('native'));
  const choice = chooseThreads(undefined);
  const plan = scalePlan(PLAN, quick ? 0.5 : 1);
  const windows = 2 * plan.windows;
  const report: PairedReport = { choice, pairs: {} };
  for (const id of IDS) {
    const s = stepperOf(id);
    const window = (threads: number, ms: number): number => {
      k.setThreads(threads);
      const t0 = performance.now();
      let n = 0;
      let t = t0;
      do {
        s.step();
        n++;
        t = performance.now();
      } while (t - t0 < ms);
      return (n * s.units) / ((t - t0) / 1000);
    };
    window(1, plan.warmupMs / 2);
    window(2, plan.warmupMs / 2);
    const one: number[] = [];
    const two: number[] = [];
    for (let w = 0; w < windows; w++) {
      // Alternate which side goes first, so neither always follows the other.
      if (w % 2 === 0) {
        one.push(window(1, plan.windowMs));
        two.push(window(2, plan.windowMs));
      } else {
        two.push(window(2, plan.windowMs));
        one.push(window(1, plan.windowMs));
      }
    }
    report.pairs[id] = { one, two };
  }
  console.log(JSON.stringify(report));
}

async function runChild(c: Config, quick: boolean, sweep: boolean): Promise<ChildReport> {
  const args = [fileURLToPath(import.meta.url), '--child', String(c.threads), ...(quick ? ['--quick'] : []), ...(sweep ? [] : ['--no-sweep'])];
  const env = threadEnv(c.threads, { SMOLCLUSTER_BACKEND: 'native', ...(c.grainScale ? { SMOLCLUSTER_GRAIN_SCALE: c.grainScale } : {}) });
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
  return { ...b, workloads, sweep };
}

/** Relative half-range of a measurement's windows, for "within spread" judgements. */
const spreadOf = (m: Measured | undefined): number => m?.summary.spread ?? NaN;

interface WorkloadRow { id: WorkloadId; t1: number; t2: number; t2forced: number; ratio: number; spread: number; neverSlower: boolean }

/** What the paired child showed for one workload over all rounds. */
interface PairedRow { id: WorkloadId; ratio: number; low: number; high: number; picks: number[]; fastest: boolean }

const TIE = 0.05;

function pairedTable(paired: PairedRow[], reports: PairedReport[]): string {
  return `\nPaired in one process (alternating windows), and the default's choice there: ${reports.map((r) => `${r.choice.threads} (${r.choice.source})`).join('; ')}\n${renderTable(
    [{ header: 'workload' }, { header: '2 / 1, median pair', align: 'right' }, { header: 'pairs range', align: 'right' }, { header: 'default picked' }, { header: 'the faster (±5% a tie)' }],
    paired.map((r) => [WORKLOADS[r.id].label, fmtRatio(r.ratio), `${fmtRatio(r.low)}–${fmtRatio(r.high)}`, r.picks.join(', '), r.fastest ? '✓' : '✗']),
  )}\n`;
}

/** The paired rows; with `print`, their table and the JSON line (--paired-only). */
function reportPaired(reports: PairedReport[], rounds: number, quick: boolean, print = true): PairedRow[] {
  const paired = pairedRows(reports);
  if (print) {
    process.stdout.write(`bench:threads --paired-only — native backend, ${rounds} round(s); load avg ${machineInfo().loadAvg1} at the end\n`);
    process.stdout.write(pairedTable(paired, reports));
    process.stdout.write(`${JSON.stringify({ bench: 'threads', rounds, quick, paired, defaultChoices: reports.map((r) => r.choice), machine: machineInfo() })}\n`);
  }
  return paired;
}

async function runPaired(quick: boolean): Promise<PairedReport> {
  const env: NodeJS.ProcessEnv = { ...process.env, SMOLCLUSTER_BACKEND: 'native' };
  for (const k of ['SMOLCLUSTER_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS']) delete env[k];
  const r = await runJsonChild<PairedReport>(process.execPath, [fileURLToPath(import.meta.url), '--paired', ...(quick ? ['--quick'] : [])], { env, timeoutMs: 600_000 });
  if (!r.value) throw new Error(`bench:threads: paired child failed: ${r.error ?? 'no report'}`);
  return r.value;
}

/** Median pair ratio (2 / 1) per workload over every round, and whether each round's default chose its faster side. */
function pairedRows(reports: PairedReport[]): PairedRow[] {
  return IDS.map((id) => {
    const ratios = reports.flatMap((r) => r.pairs[id]!.two.map((t, i) => t / r.pairs[id]!.one[i])).sort((a, b) => a - b);
    const ratio = ratios[Math.floor(ratios.length / 2)];
    const picks = reports.map((r) => r.choice.threads);
    const fastest = picks.every((p) => (ratio >= 1 + TIE ? p === 2 : ratio <= 1 - TIE ? p === 1 : true));
    return { id, ratio, low: ratios[0], high: ratios[ratios.length - 1], picks, fastest };
  });
}
interface SweepRow { kernel: string; unit: string; size: number; t1Us: number; forcedSpeedup: number; policySpeedup: number }

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const sweep = !argv.includes('--no-sweep');
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) return child(Number(argv[childAt + 1]), quick, sweep);
  if (argv.includes('--paired')) return pairedChild(quick);
  const roundsAt = argv.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : 2;
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 10)) throw new Error('bench:threads: --rounds must be 1..10');
  const machineStart = machineInfo();
  const pairedOnly = argv.includes('--paired-only');
  const reports: Partial<Record<Config['key'], ChildReport>> = {};
  const pairedReports: PairedReport[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const c of pairedOnly ? [] : CONFIGS) {
      process.stderr.write(`bench:threads: round ${r + 1}/${rounds}: ${c.label} ...\n`);
      reports[c.key] = pool(reports[c.key], await runChild(c, quick, sweep));
    }
    process.stderr.write(`bench:threads: round ${r + 1}/${rounds}: the default's choice, then 1 and 2 threads paired ...\n`);
    pairedReports.push(await runPaired(quick));
  }
  if (pairedOnly) {
    reportPaired(pairedReports, rounds, quick);
    return;
  }
  const [t1, t2, forced] = [reports.t1!, reports.t2!, reports.t2forced!];
  const paired = reportPaired(pairedReports, rounds, quick, false);
  const rows: WorkloadRow[] = IDS.map((id) => {
    const a = t1.workloads[id]!.median;
    const b = t2.workloads[id]!.median;
    const spread = Math.max(spreadOf(t1.workloads[id]), spreadOf(t2.workloads[id]));
    return { id, t1: a, t2: b, t2forced: forced.workloads[id]!.median, ratio: b / a, spread, neverSlower: b / a >= 1 - spread };
  });
  process.stdout.write(`bench:threads — native backend, median of ${rounds} × windows; load avg ${machineStart.loadAvg1} at start\n`);
  process.stdout.write(`${renderTable(
    [{ header: 'workload' }, { header: 'unit' }, { header: '1 thread', align: 'right' }, { header: '2 threads', align: 'right' }, { header: '2 / 1', align: 'right' },
      { header: 'spread ±', align: 'right' }, { header: 'always fork 2 / 1', align: 'right' }, { header: 'not slower' }],
    rows.map((r) => [WORKLOADS[r.id].label, unitOf(WORKLOADS[r.id]), fmtNum(r.t1, r.id === 'matmul' ? 1 : 0), fmtNum(r.t2, r.id === 'matmul' ? 1 : 0), fmtRatio(r.ratio),
      `${(100 * r.spread).toFixed(0)}%`, fmtRatio(r.t2forced / r.t1), r.neverSlower ? '✓' : '✗']),
  )}\n`);
  process.stdout.write(pairedTable(paired, pairedReports));
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
  process.stdout.write(`${JSON.stringify({ bench: 'threads', rounds, quick, workloads: rows, paired, defaultChoices: pairedReports.map((r) => r.choice), sweep: sweepRows, crossovers, machine: { ...machineStart, loadAvg1End: machineInfo().loadAvg1 } })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
