/**
 * Performance baselines (`smolcluster baseline save|compare`): a run's headline numbers saved under
 * a name, and a later run compared against them. Every metric knows which way is better, so only a
 * change in the bad direction beyond its threshold is a regression; an improvement never is. Saved
 * from several runs, a baseline keeps their spread (noise.ts), and a change within run-to-run noise
 * is reported as such, never as a regression.
 * Files: schema `smolcluster-baseline` and `smolcluster-baseline-comparison`, version 1
 * (docs/VALIDATION.md).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, numberField, readSchema, writeJson } from './files.js';
import type { RunFile } from './run_file.js';
import { type Spread, UNSTABLE_PCT, noisePct, relativeStdevPct, spreadOf } from './noise.js';
import { pct, table } from './text.js';

export const BASELINE_SCHEMA = 'smolcluster-baseline';
export const COMPARISON_SCHEMA = 'smolcluster-baseline-comparison';
export const BASELINE_SCHEMA_VERSION = 1;

export type Direction = 'lower' | 'higher';
export type ThresholdName = 'latency' | 'throughput' | 'loss';

export interface MetricDef {
  key: 'average_step_time_ms' | 'average_throughput_samples_per_sec' | 'final_loss' | 'average_loss' | 'total_allreduce_time_ms';
  label: string;
  unit: string;
  /** Which way is better. */
  better: Direction;
  threshold: ThresholdName;
}

export const METRICS: readonly MetricDef[] = [
  { key: 'average_step_time_ms', label: 'step latency (mean)', unit: 'ms', better: 'lower', threshold: 'latency' },
  { key: 'average_throughput_samples_per_sec', label: 'throughput', unit: 'samples/s', better: 'higher', threshold: 'throughput' },
  { key: 'final_loss', label: 'final loss', unit: '', better: 'lower', threshold: 'loss' },
  // MiniCluster's two (its baseline compare checks them too); baselines saved before them lack them.
  { key: 'average_loss', label: 'average loss', unit: '', better: 'lower', threshold: 'loss' },
  { key: 'total_allreduce_time_ms', label: 'all-reduce time (total)', unit: 'ms', better: 'lower', threshold: 'latency' },
];

/** The metrics every baseline file has; the others are compared when the baseline has them. */
const REQUIRED: ReadonlySet<MetricDef['key']> = new Set(['average_step_time_ms', 'average_throughput_samples_per_sec', 'final_loss']);

export interface Baseline {
  schema: typeof BASELINE_SCHEMA;
  schema_version: typeof BASELINE_SCHEMA_VERSION;
  name: string;
  saved_at: string;
  source: string;
  /** The means over the runs it was saved from. */
  metrics: Record<MetricDef['key'], number>;
  /** Each metric's spread over those runs (absent in a baseline saved before repeats were kept). */
  spread?: Partial<Record<MetricDef['key'], Spread>>;
  /** The run files it was saved from. */
  runs?: string[];
  /** What the numbers were measured on: a comparison notes any difference. */
  context: Record<string, string | number>;
}

export interface MetricComparison {
  metric: MetricDef['key'];
  better: Direction;
  baseline: number;
  current: number;
  /** (current − baseline) / baseline × 100. */
  change_pct: number;
  /** How much worse, in percent of the baseline (negative: better). */
  worse_pct: number;
  threshold_pct: number | null;
  /** The smallest change run-to-run noise does not explain (noise.ts), or null when no side was repeated. */
  noise_pct: number | null;
  /** `within-noise`: worse beyond the threshold, but not beyond the noise — not a regression. */
  status: 'regression' | 'ok' | 'improved' | 'not-checked' | 'within-noise';
}

export interface BaselineComparison {
  schema: typeof COMPARISON_SCHEMA;
  schema_version: typeof BASELINE_SCHEMA_VERSION;
  name: string;
  baseline_file: string;
  run_file: string;
  metrics: MetricComparison[];
  notes: string[];
  regressions: number;
  verdict: 'pass' | 'regression';
}

export const DEFAULT_BASELINE_DIR = 'baselines';

export function baselineFile(dir: string, name: string): string {
  if (!/^[\w.@+-]+$/.test(name)) throw new InputError(name, 'a baseline name may only contain letters, digits and . _ - + @');
  return join(dir, `${name}.json`);
}

function context(run: RunFile): Record<string, string | number> {
  return {
    strategy: run.strategy, model: run.model, dataset: run.dataset, num_workers: run.num_workers,
    global_batch_size: run.global_batch_size, num_steps: run.num_steps, backend: run.environment?.backend ?? 'unknown',
    hostname: run.environment?.host?.hostname ?? 'unknown',
  };
}

/** One run file, as read. */
export interface RunSample {
  file: string;
  run: RunFile;
}

/** Context fields repeats of one run must share (host and backend may differ only by accident: a note). */
const SAME_RUN: readonly string[] = ['strategy', 'model', 'dataset', 'num_workers', 'global_batch_size', 'num_steps'];

/** Refuses run files that are not repeats of one configuration, naming the field and both files. */
function checkRepeats(samples: readonly RunSample[]): void {
  const first = context(samples[0].run);
  for (const s of samples.slice(1)) {
    const other = context(s.run);
    const field = SAME_RUN.find((k) => other[k] !== first[k]);
    if (field) throw new InputError(s.file, `is not a repeat of ${samples[0].file}: ${field} ${String(other[field])} vs ${String(first[field])}`);
  }
}

/** Each metric's spread over the samples (metrics a sample lacks are left out). */
function spreads(samples: readonly RunSample[]): Partial<Record<MetricDef['key'], Spread>> {
  const out: Partial<Record<MetricDef['key'], Spread>> = {};
  for (const m of METRICS) {
    const values = samples.map((s) => s.run[m.key]);
    if (values.every((v) => typeof v === 'number')) out[m.key] = spreadOf(values);
  }
  return out;
}

export function makeBaseline(name: string, samples: readonly RunSample[]): Baseline {
  if (samples.length === 0) throw new Error('makeBaseline: no runs');
  checkRepeats(samples);
  const spread = spreads(samples);
  const metrics = Object.fromEntries(METRICS.map((m) => [m.key, spread[m.key]?.mean])) as Baseline['metrics'];
  return {
    schema: BASELINE_SCHEMA, schema_version: BASELINE_SCHEMA_VERSION, name, saved_at: new Date().toISOString(),
    source: samples.map((s) => s.file).join(', '), metrics, spread, runs: samples.map((s) => s.file), context: context(samples[0].run),
  };
}

export function saveBaseline(dir: string, baseline: Baseline): string {
  const file = baselineFile(dir, baseline.name);
  mkdirSync(dir, { recursive: true });
  writeJson(file, baseline);
  return file;
}

export function loadBaseline(dir: string, name: string, program = 'smolcluster'): { file: string; baseline: Baseline } {
  const file = baselineFile(dir, name);
  if (!existsSync(file)) throw new InputError(file, `no baseline named "${name}" (save one with: ${program} baseline save --metrics run.json --name ${name})`);
  const o = readSchema(file, BASELINE_SCHEMA, BASELINE_SCHEMA_VERSION);
  if (typeof o.metrics !== 'object' || o.metrics === null) throw new InputError(file, 'metrics must be an object');
  for (const m of METRICS) if (REQUIRED.has(m.key)) numberField(file, o.metrics as Record<string, unknown>, m.key, 'metrics.');
  return { file, baseline: o as unknown as Baseline };
}

/** Thresholds in percent; a metric whose threshold is undefined is reported but not checked. */
export type Thresholds = Partial<Record<ThresholdName, number>>;

function statusOf(b: number, c: number, worse: number, threshold: number | null, noise: number | null): MetricComparison['status'] {
  if (!Number.isFinite(c) && Number.isFinite(b)) return threshold === null ? 'not-checked' : 'regression';
  if (threshold === null) return 'not-checked';
  if (worse > threshold) return noise !== null && worse <= noise ? 'within-noise' : 'regression';
  return worse < 0 ? 'improved' : 'ok';
}

function compareMetric(m: MetricDef, base: Baseline, current: Spread, thresholds: Thresholds): MetricComparison {
  const b = base.metrics[m.key];
  const c = current.mean;
  const change = b === 0 ? (c === 0 ? 0 : Infinity * Math.sign(c)) : ((c - b) / Math.abs(b)) * 100;
  const worse = m.better === 'lower' ? change : -change;
  const threshold = thresholds[m.threshold] ?? null;
  const held = base.spread?.[m.key] ?? spreadOf([b]);
  const noise = noisePct(held, current);
  return {
    metric: m.key, better: m.better, baseline: b, current: c, change_pct: change, worse_pct: worse, threshold_pct: threshold,
    noise_pct: noise, status: statusOf(b, c, worse, threshold, noise),
  };
}

/** What the reader should know about the noise: unmeasured, or a side that varied more than pyperf tolerates. */
function noiseNotes(base: Baseline, current: Partial<Record<MetricDef['key'], Spread>>, compared: readonly MetricDef[]): string[] {
  const baseRuns = base.spread?.[compared[0]?.key]?.n ?? 1;
  const currentRuns = current[compared[0]?.key]?.n ?? 1;
  const notes: string[] = [];
  if (baseRuns === 1 && currentRuns === 1) {
    notes.push('noise not measured: the baseline and the run are one run each, so a difference within run-to-run noise may be called a regression (pass several --metrics files to save and compare)');
  }
  for (const m of compared) {
    for (const [side, s] of [['the baseline', base.spread?.[m.key]], ['this comparison', current[m.key]]] as const) {
      const cv = s ? relativeStdevPct(s) : null;
      if (cv !== null && cv > UNSTABLE_PCT) notes.push(`${m.label} varied ${cv.toFixed(1)}% (standard deviation over ${s!.n} runs) in ${side}'s runs: unstable, differences below the noise are not flagged`);
    }
  }
  return notes;
}

export function compareToBaseline(
  base: { file: string; baseline: Baseline }, run: RunSample | readonly RunSample[], thresholds: Thresholds,
): BaselineComparison {
  const samples = Array.isArray(run) ? (run as readonly RunSample[]) : [run as RunSample];
  checkRepeats(samples);
  const current = spreads(samples);
  const missing = METRICS.filter((m) => typeof base.baseline.metrics[m.key] !== 'number' || current[m.key] === undefined);
  const compared = METRICS.filter((m) => !missing.includes(m));
  const metrics = compared.map((m) => compareMetric(m, base.baseline, current[m.key]!, thresholds));
  const now = context(samples[0].run);
  const notes = Object.entries(base.baseline.context ?? {})
    .filter(([k, v]) => now[k] !== undefined && now[k] !== v)
    .map(([k, v]) => `${k} differs from the baseline's (${String(v)} → ${String(now[k])}): the numbers may not be comparable`)
    .concat(missing.map((m) => `${m.key} not compared: the baseline or the run does not record it`))
    .concat(noiseNotes(base.baseline, current, compared));
  const regressions = metrics.filter((m) => m.status === 'regression').length;
  return {
    schema: COMPARISON_SCHEMA, schema_version: BASELINE_SCHEMA_VERSION, name: base.baseline.name, baseline_file: base.file,
    run_file: samples.map((s) => s.file).join(', '), metrics, notes, regressions, verdict: regressions > 0 ? 'regression' : 'pass',
  };
}

export function formatComparison(c: BaselineComparison): string {
  const num = (x: number): string => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4)) : String(x));
  const rows = c.metrics.map((m) => {
    const def = METRICS.find((d) => d.key === m.metric)!;
    return [
      `${def.label}${def.unit ? ` (${def.unit})` : ''}`, num(m.baseline), num(m.current), pct(m.change_pct),
      `${m.better} is better`, m.threshold_pct === null ? '-' : `${m.threshold_pct}%`, m.noise_pct === null ? '-' : `${m.noise_pct.toFixed(1)}%`,
      m.status === 'regression' ? 'REGRESSION' : m.status,
    ];
  });
  const lines = [
    `baseline "${c.name}" (${c.baseline_file}) vs ${c.run_file}`,
    '',
    ...table(['metric', 'baseline', 'current', 'change', 'direction', 'threshold', 'noise', 'status'], rows, ['l', 'r', 'r', 'r', 'l', 'r', 'r', 'l']),
    '',
    ...c.notes.map((n) => `note: ${n}`),
    c.verdict === 'pass' ? 'PASS: no regression' : `FAIL: ${c.regressions} regression${c.regressions > 1 ? 's' : ''}`,
  ];
  return `${lines.join('\n')}\n`;
}
