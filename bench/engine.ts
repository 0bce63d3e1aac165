/**
 * bench:engine — training throughput and GEMM speed of our tensor engine, one thread, against
 * PyTorch measured in the same invocation.
 *
 *   npm run bench:engine [-- --quick] [-- --no-torch] [-- --only mlp32,mlp256,cnn64,matmul]
 *
 * The parent process runs each engine in a child of its own, one after the other (so V8 JIT state,
 * allocator and thread pools of one cannot colour another's figures): this same file with
 * `--worker js` and `--worker native`, then bench/reference/engine_torch.py under a Python that
 * can import torch. Every child uses the method of bench/lib/windows.ts and prints one JSON line;
 * the parent prints a table with ratios against PyTorch and the targets, then one JSON object with
 * every figure as the last line. docs/BENCHMARKS.md describes the method and each figure.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type MachineInfo, type WindowPlan, findPythonWith, fmtNum, fmtRatio, fmtSpread, gitInfo,
  machineInfo, median, mergeWindows, packageRoot, parseOnly, ratio, renderTable, runJsonChild, scalePlan, threadEnv,
} from './lib/index.js';
import { describeSpec } from '../src/nn/index.js';
import { IDS, type Measured, POOL, SEED, OPTIMIZER, WORKLOADS, type WorkloadId, measure, unitOf } from './engine_workloads.js';
import { renderKernelSection, runKernelSection } from './engine_kernels.js';
import { RUN_IDS, type RunId, renderWholeRuns, runWholeRuns } from './engine_runs.js';
import { setBackend } from '../src/tensor/index.js';

// ---- workloads (bench/engine_workloads.ts, shared with bench:threads) ----------------------------

type EngineId = 'js' | 'native' | 'torch';
type OurEngine = Exclude<EngineId, 'torch'>;

/** Targets from the issue: a ratio against PyTorch for native, an absolute rate for js. */
interface Target {
  id: WorkloadId;
  engine: OurEngine;
  kind: 'ratio' | 'rate';
  min: number;
}
const TARGETS: Target[] = [
  { id: 'mlp32', engine: 'native', kind: 'ratio', min: 1.2 },
  { id: 'mlp256', engine: 'native', kind: 'ratio', min: 1.0 },
  { id: 'cnn64', engine: 'native', kind: 'ratio', min: 1.0 },
  { id: 'matmul', engine: 'native', kind: 'ratio', min: 0.9 },
  { id: 'mlp32', engine: 'js', kind: 'rate', min: 5000 },
];

// ---- window plans ------------------------------------------------------------------------------

const PLAN: WindowPlan = { warmupMs: 1000, warmupSteps: 5, windows: 7, windowMs: 800 };
/** The js CNN takes ~0.1–0.3 s a step: fewer, longer windows keep its share of the budget small. */
const SLOW_PLAN: WindowPlan = { warmupMs: 1000, warmupSteps: 2, windows: 5, windowMs: 1200 };
const QUICK = 0.3;

/** PyTorch gets the native plan, so the two engines we compare most are measured identically. */
function planFor(engine: EngineId, id: WorkloadId, quick: boolean): WindowPlan {
  const base = engine === 'js' && id === 'cnn64' ? SLOW_PLAN : PLAN;
  return quick ? scalePlan(base, QUICK) : base;
}

function plansFor(engine: EngineId, ids: readonly WorkloadId[], quick: boolean): Partial<Record<WorkloadId, WindowPlan>> {
  return Object.fromEntries(ids.map((id) => [id, planFor(engine, id, quick)]));
}

// ---- worker: one of our backends, in its own process ------------------------------------------

interface WorkerReport {
  engine: EngineId;
  available: boolean;
  reason?: string;
  description?: string;
  threads?: number;
  versions?: Record<string, unknown>;
  results: Partial<Record<WorkloadId, Measured>>;
  /** Workloads that threw, with the message. */
  errors?: Partial<Record<WorkloadId, string>>;
}

function worker(engine: OurEngine, ids: readonly WorkloadId[], plans: Partial<Record<WorkloadId, WindowPlan>>): void {
  const report: WorkerReport = { engine, available: false, results: {} };
  try {
    const b = setBackend(engine);
    b.setThreads(1);
    Object.assign(report, { available: true, description: b.description, threads: b.getThreads() });
  } catch (e) {
    report.reason = (e as Error).message;
    console.log(JSON.stringify(report));
    return;
  }
  for (const id of ids) {
    let r: Measured;
    try {
      r = measure(id, plans[id] ?? PLAN);
    } catch (e) {
      (report.errors ??= {})[id] = (e as Error).message;
      process.stderr.write(`[${engine}] ${id}: failed: ${(e as Error).stack ?? String(e)}\n`);
      continue;
    }
    report.results[id] = r;
    const digits = r.unit === 'GFLOP/s' ? 1 : 0;
    process.stderr.write(`[${engine}] ${id}: ${fmtNum(r.median, digits)} ${r.unit} (median of ${r.rates.length} windows ${fmtSpread(r.summary.spread)})\n`);
  }
  console.log(JSON.stringify(report));
}

// ---- parent: run every engine, compare, report ------------------------------------------------

interface Options {
  quick: boolean;
  torch: boolean;
  ids: WorkloadId[];
  profile: boolean;
  /** Each engine runs this many times, interleaved (js, native, torch, js, ...); windows are pooled. */
  rounds: number;
  /** Also measure the elementwise/optimizer kernels' GB/s against copy bandwidth (engine_kernels.ts). */
  kernels: boolean;
  /** Whole `train` runs (Adam, SGD) to time beside PyTorch's (engine_runs.ts); empty skips them. */
  runs: RunId[];
}

async function runOurs(engine: OurEngine, o: Options, root: string): Promise<WorkerReport> {
  const self = fileURLToPath(import.meta.url);
  const nodeFlags: string[] = [];
  if (o.profile) {
    const dir = join(root, '.bench', 'profiles');
    mkdirSync(dir, { recursive: true });
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=engine-${engine}-${Date.now()}.cpuprofile`);
  }
  const args = [...nodeFlags, self, '--worker', engine, '--only', o.ids.join(','), '--plans', JSON.stringify(plansFor(engine, o.ids, o.quick))];
  const r = await runJsonChild<WorkerReport>(process.execPath, args, {
    env: threadEnv(1, { SMOLCLUSTER_BACKEND: engine }), timeoutMs: 240_000,
  });
  return r.value ?? { engine, available: false, reason: r.error ?? 'no report', results: {} };
}

async function runTorch(o: Options, root: string): Promise<WorkerReport> {
  const script = join(root, 'bench', 'reference', 'engine_torch.py');
  if (!existsSync(script)) return { engine: 'torch', available: false, reason: `missing ${script}`, results: {} };
  const probe = findPythonWith('torch');
  if (!probe.found) return { engine: 'torch', available: false, reason: probe.reason, results: {} };
  const args = [script, '--only', o.ids.join(','), '--plans', JSON.stringify(plansFor('torch', o.ids, o.quick)), '--seed', String(SEED)];
  const r = await runJsonChild<WorkerReport>(probe.found.python, args, { env: threadEnv(1), timeoutMs: 240_000 });
  return r.value ?? { engine: 'torch', available: false, reason: r.error ?? 'no report', results: {} };
}

/** Pools the windows of two runs of one engine (rounds): the median is taken over all windows. */
function pool(prev: WorkerReport | undefined, next: WorkerReport): WorkerReport {
  if (!prev || !prev.available) return next;
  if (!next.available) return prev;
  const results: WorkerReport['results'] = { ...prev.results };
  for (const [id, b] of Object.entries(next.results) as [WorkloadId, Measured][]) {
    const a = results[id];
    results[id] = a ? { ...b, ...mergeWindows(a, b) } : b;
  }
  return { ...next, results };
}

interface TargetOutcome extends Target {
  text: string;
  value: number | null;
  met: boolean | null;
}

function evaluateTargets(o: Options, reports: Record<EngineId, WorkerReport>): TargetOutcome[] {
  return TARGETS.filter((t) => o.ids.includes(t.id)).map((t) => {
    const ours = reports[t.engine].results[t.id]?.median ?? null;
    const value = t.kind === 'rate' ? ours : ratio(ours, reports.torch.results[t.id]?.median);
    const text = t.kind === 'rate'
      ? `${t.engine} ≥ ${fmtNum(t.min)} ${unitOf(WORKLOADS[t.id])} on ${t.id}`
      : `${t.engine}/torch ≥ ${t.min.toFixed(1)}× on ${t.id}`;
    return { ...t, text, value, met: value === null ? null : value >= t.min };
  });
}

const mark = (met: boolean | null): string => (met === null ? '?' : met ? '✓' : '✗');

function cell(r: Measured | undefined, available: boolean, digits: number): string {
  if (!available) return 'n/a';
  if (!r) return '—';
  return `${fmtNum(r.median, digits)} ${fmtSpread(r.summary.spread)}`;
}

function renderReport(o: Options, reports: Record<EngineId, WorkerReport>, targets: TargetOutcome[]): string {
  const rows = o.ids.map((id) => {
    const w = WORKLOADS[id];
    const digits = w.kind === 'gemm' ? 1 : 0;
    const r = (e: EngineId): Measured | undefined => reports[e].results[id];
    const beside = (e: OurEngine, kind: Target['kind']): string => {
      const t = targets.find((x) => x.id === id && x.engine === e && x.kind === kind);
      return t ? ` (≥${kind === 'rate' ? fmtNum(t.min) : t.min.toFixed(1)} ${mark(t.met)})` : '';
    };
    return [
      w.label, unitOf(w),
      cell(r('js'), reports.js.available, digits) + beside('js', 'rate'),
      cell(r('native'), reports.native.available, digits),
      cell(r('torch'), reports.torch.available, digits),
      fmtRatio(ratio(r('js')?.median, r('torch')?.median)),
      fmtRatio(ratio(r('native')?.median, r('torch')?.median)) + beside('native', 'ratio'),
    ];
  });
  const table = renderTable(
    [{ header: 'workload' }, { header: 'unit', align: 'left' }, { header: 'js' }, { header: 'native' }, { header: 'torch' },
      { header: 'js/torch' }, { header: 'native/torch (target)' }],
    rows,
  );
  const notes: string[] = [];
  for (const e of ['js', 'native', 'torch'] as const) {
    if (!reports[e].available) notes.push(`${e}: unavailable — ${reports[e].reason ?? 'unknown reason'}`);
  }
  for (const e of ['js', 'native', 'torch'] as const) {
    for (const [id, msg] of Object.entries(reports[e].errors ?? {})) notes.push(`${e} ${id}: failed — ${msg}`);
    for (const id of o.ids) {
      const loss = reports[e].results[id]?.loss;
      if (loss !== undefined && !Number.isFinite(loss)) notes.push(`${e} ${id}: final loss is ${loss} — training diverged or a kernel is wrong`);
    }
  }
  const disturbed: string[] = [];
  for (const e of ['js', 'native', 'torch'] as const) {
    for (const id of o.ids) {
      const share = reports[e].results[id]?.cpuShare;
      const m = share?.length ? median(share) : NaN;
      if (m < 0.9 || m > 1.15) disturbed.push(`${e} ${id} ${m.toFixed(2)}`);
    }
  }
  if (disturbed.length) {
    notes.push(`CPU share (process CPU / wall time, 1.00 = one busy thread) off 1 in: ${disturbed.join(', ')} — ` +
      'below 1: other processes took the core and those figures are pessimistic; ' +
      'above 1: other threads of the engine were busy too (a thread pool not pinned to 1, or V8 GC helper threads).');
  }
  const met = targets.filter((t) => t.met === true).length;
  const judged = targets.filter((t) => t.met !== null).length;
  notes.push(`targets met: ${met}/${judged}${judged < targets.length ? ` (${targets.length - judged} not measurable)` : ''}` +
    (targets.some((t) => t.met === false) ? ` — missed: ${targets.filter((t) => t.met === false).map((t) => t.text).join('; ')}` : ''));
  return `${table}\n\n${notes.join('\n')}`;
}

/** Rounds the per-window arrays so the JSON line stays readable. */
function compact(r: Measured | undefined): Record<string, unknown> | null {
  if (!r) return null;
  const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;
  const d = r.unit === 'GFLOP/s' ? 2 : 0;
  return {
    median: round(r.median, d), spread: round(r.summary.spread, 4), min: round(r.summary.min, d), max: round(r.summary.max, d),
    windows: r.rates.map((x) => round(x, d)), steps: r.steps, warmupSteps: r.warmup.steps,
    cpuShare: r.cpuShare ? round(median(r.cpuShare), 2) : null,
    // Rate per CPU-second (rate / CPU share): less sensitive to other processes on a busy machine.
    perCpuSecond: r.cpuShare ? round(median(r.rates.map((x, i) => x / (r.cpuShare[i] || 1))), d) : null,
    ...(r.loss !== undefined ? { loss: round(r.loss, 4) } : {}),
  };
}

function header(o: Options, m: MachineInfo): string {
  return [
    `smolcluster bench:engine — one thread; median of timed windows after warm-up${o.quick ? ' (--quick)' : ''}`,
    `${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB; node ${m.node}; load avg ${m.loadAvg1}`,
    '',
  ].join('\n');
}

async function parent(o: Options): Promise<void> {
  const root = packageRoot(import.meta.url);
  const started = Date.now();
  const machine = machineInfo();
  process.stdout.write(`${header(o, machine)}\n`);
  const reports = {} as Record<EngineId, WorkerReport>;
  for (let round = 0; round < (o.ids.length ? o.rounds : 0); round++) {
    if (o.rounds > 1) process.stderr.write(`round ${round + 1}/${o.rounds}\n`);
    reports.js = pool(reports.js, await runOurs('js', o, root));
    reports.native = pool(reports.native, await runOurs('native', o, root));
    reports.torch = pool(reports.torch, o.torch ? await runTorch(o, root) : { engine: 'torch', available: false, reason: '--no-torch', results: {} });
  }
  const targets = o.ids.length ? evaluateTargets(o, reports) : [];
  if (o.ids.length) process.stdout.write(`\n${renderReport(o, reports, targets)}\n`);
  const kernels = o.kernels ? await runKernelSection(o.quick) : null;
  if (kernels) process.stdout.write(`\n${renderKernelSection(kernels)}\n`);
  const runs = o.runs.length ? await runWholeRuns(o.runs, o.quick ? 1 : Math.max(3, o.rounds)) : null;
  if (runs) process.stdout.write(`\n${renderWholeRuns(runs)}\n`);

  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const results = Object.fromEntries(o.ids.map((id) => {
    const w = WORKLOADS[id];
    const med = (e: EngineId): number | undefined => reports[e].results[id]?.median;
    return [id, {
      label: w.label, unit: unitOf(w),
      ...(w.kind === 'train' ? { model: describeSpec(w.model), batch: w.batch } : { M: w.M, K: w.K, N: w.N }),
      js: compact(reports.js.results[id]), native: compact(reports.native.results[id]), torch: compact(reports.torch.results[id]),
      ratio: { js: ratio(med('js'), med('torch')), native: ratio(med('native'), med('torch')) },
    }];
  }));
  const engines = Object.fromEntries((['js', 'native', 'torch'] as const).filter((e) => reports[e]).map((e) => {
    const r = reports[e];
    return [e, { available: r.available, ...(r.reason ? { reason: r.reason } : {}), ...(r.errors ? { errors: r.errors } : {}), ...(r.description ? { description: r.description } : {}), ...(r.threads ? { threads: r.threads } : {}) }];
  }));
  const summary = {
    bench: 'engine', schema: 1, time: new Date(started).toISOString(), seconds: Math.round((Date.now() - started) / 100) / 10,
    options: { quick: o.quick, torch: o.torch, only: [...o.ids, ...o.runs], rounds: o.rounds },
    method: {
      statistic: 'median window rate', threads: 1, pool: POOL, seed: SEED, optimizer: OPTIMIZER,
      plans: { js: plansFor('js', o.ids, o.quick), native: plansFor('native', o.ids, o.quick), torch: plansFor('torch', o.ids, o.quick) },
    },
    machine: { ...machine, loadAvg1End: Math.round(machineInfo().loadAvg1 * 100) / 100 },
    versions: {
      smolcluster: pkg.version, git: gitInfo(root), node: process.versions.node, v8: process.versions.v8,
      native: reports.native?.description ?? null, torch: reports.torch?.versions ?? null,
    },
    engines,
    results,
    targets: targets.map(({ id, engine, kind, min, text, value, met }) => ({ id, engine, kind, min, text, value, met })),
    kernels,
    runs,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

// ---- entry -----------------------------------------------------------------------------------

const USAGE = `usage: node dist/bench/engine.js [--quick] [--no-torch] [--only ${[...IDS, ...RUN_IDS].join(',')}] [--rounds N] [--profile]
  --quick      shorter warm-up and windows (~${Math.round(QUICK * 100)} % of the time)
  --no-torch   skip the PyTorch reference (no ratios)
  --only LIST  run only these workloads (run-adam, run-sgd: the whole-run rows; \`--only run-adam,run-sgd --no-kernels\` times only those)
  --rounds N   run every engine N times, interleaved, and pool the windows (steadier on a busy machine); whole runs take max(3, N) rounds
  --profile    run our engines under --cpu-prof (profiles in .bench/profiles/)
  --no-kernels skip the kernel-bandwidth table (GB/s of each elementwise/optimizer kernel vs copy)
  --no-runs    skip the whole-run rows (train MLP 1 epoch with Adam and SGD, ours vs PyTorch, start to exit)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'no-torch': { type: 'boolean', default: false },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '1' },
      'no-kernels': { type: 'boolean', default: false },
      'no-runs': { type: 'boolean', default: false },
      worker: { type: 'string' },
      plans: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const asked = parseOnly(values.only, [...IDS, ...RUN_IDS]);
  const ids = IDS.filter((id) => asked.includes(id));
  const runs = values['no-runs'] ? [] : RUN_IDS.filter((id) => asked.includes(id));
  if (values.worker !== undefined) {
    if (values.worker !== 'js' && values.worker !== 'native') throw new Error(`--worker must be js or native, got ${values.worker}`);
    const plans = values.plans ? (JSON.parse(values.plans) as Partial<Record<WorkloadId, WindowPlan>>) : plansFor(values.worker, ids, values.quick);
    worker(values.worker, ids, plans);
    return;
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new Error(`--rounds must be an integer in 1..10, got ${values.rounds}`);
  await parent({ quick: values.quick, torch: !values['no-torch'], ids, profile: values.profile, rounds, kernels: !values['no-kernels'], runs });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:engine: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
  process.exit(1);
});
