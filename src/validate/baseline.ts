/**
 * Performance baselines (`smolcluster baseline save|compare`): a run's headline numbers saved under
 * a name, and a later run compared against them. Every metric knows which way is better, so only a
 * change in the bad direction beyond its threshold is a regression; an improvement never is.
 * Files: schema `smolcluster-baseline` and `smolcluster-baseline-comparison`, version 1
 * (docs/VALIDATION.md).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, numberField, readSchema, writeJson } from './files.js';
import type { RunFile } from './run_file.js';
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
  metrics: Record<MetricDef['key'], number>;
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
  status: 'regression' | 'ok' | 'improved' | 'not-checked';
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

export function makeBaseline(name: string, source: string, run: RunFile): Baseline {
  const metrics = Object.fromEntries(METRICS.map((m) => [m.key, run[m.key]])) as Baseline['metrics'];
  return {
    schema: BASELINE_SCHEMA, schema_version: BASELINE_SCHEMA_VERSION, name, saved_at: new Date().toISOString(), source, metrics, context: context(run),
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

export function compareToBaseline(
  base: { file: string; baseline: Baseline }, run: { file: string; run: RunFile }, thresholds: Thresholds,
): BaselineComparison {
  const missing = METRICS.filter((m) => typeof base.baseline.metrics[m.key] !== 'number' || typeof run.run[m.key] !== 'number');
  const metrics = METRICS.filter((m) => !missing.includes(m)).map((m): MetricComparison => {
    const b = base.baseline.metrics[m.key];
    const c = run.run[m.key];
    const change = b === 0 ? (c === 0 ? 0 : Infinity * Math.sign(c)) : ((c - b) / Math.abs(b)) * 100;
    const worse = m.better === 'lower' ? change : -change;
    const threshold = thresholds[m.threshold] ?? null;
    let status: MetricComparison['status'];
    if (!Number.isFinite(c) && Number.isFinite(b)) status = threshold === null ? 'not-checked' : 'regression';
    else if (threshold === null) status = 'not-checked';
    else if (worse > threshold) status = 'regression';
    else status = worse < 0 ? 'improved' : 'ok';
    return { metric: m.key, better: m.better, baseline: b, current: c, change_pct: change, worse_pct: worse, threshold_pct: threshold, status };
  });
  const now = context(run.run);
  const notes = Object.entries(base.baseline.context ?? {})
    .filter(([k, v]) => now[k] !== undefined && now[k] !== v)
    .map(([k, v]) => `${k} differs from the baseline's (${String(v)} → ${String(now[k])}): the numbers may not be comparable`)
    .concat(missing.map((m) => `${m.key} not compared: the baseline or the run does not record it`));
  const regressions = metrics.filter((m) => m.status === 'regression').length;
  return {
    schema: COMPARISON_SCHEMA, schema_version: BASELINE_SCHEMA_VERSION, name: base.baseline.name, baseline_file: base.file, run_file: run.file,
    metrics, notes, regressions, verdict: regressions > 0 ? 'regression' : 'pass',
  };
}

export function formatComparison(c: BaselineComparison): string {
  const num = (x: number): string => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4)) : String(x));
  const rows = c.metrics.map((m) => {
    const def = METRICS.find((d) => d.key === m.metric)!;
    return [
      `${def.label}${def.unit ? ` (${def.unit})` : ''}`, num(m.baseline), num(m.current), pct(m.change_pct),
      `${m.better} is better`, m.threshold_pct === null ? '-' : `${m.threshold_pct}%`, m.status === 'regression' ? 'REGRESSION' : m.status,
    ];
  });
  const lines = [
    `baseline "${c.name}" (${c.baseline_file}) vs ${c.run_file}`,
    '',
    ...table(['metric', 'baseline', 'current', 'change', 'direction', 'threshold', 'status'], rows, ['l', 'r', 'r', 'r', 'l', 'r', 'l']),
    '',
    ...c.notes.map((n) => `note: ${n}`),
    c.verdict === 'pass' ? 'PASS: no regression' : `FAIL: ${c.regressions} regression${c.regressions > 1 ? 's' : ''}`,
  ];
  return `${lines.join('\n')}\n`;
}
