/**
 * Step-by-step comparison of two runs' losses (`smolcluster validate`): a reference (e.g. one
 * process at batch N·B) and a candidate (N workers at batch B) that saw the same global batches
 * must agree at every step. The report is schema `smolcluster-validation`, version 1
 * (docs/VALIDATION.md).
 */
import type { RunFile } from './run_file.js';
import { table } from './text.js';

export const VALIDATION_SCHEMA = 'smolcluster-validation';
export const VALIDATION_SCHEMA_VERSION = 1;

export interface CompareOptions {
  /** Largest relative difference |candidate − reference| / |reference| a step may have. */
  tolerance: number;
  /** A step whose absolute difference is at most this passes whatever its relative one (losses near 0). */
  absTolerance: number;
}

export interface StepComparison {
  step: number;
  reference: number | null;
  candidate: number | null;
  abs_delta: number | null;
  rel_delta: number | null;
  pass: boolean;
}

export interface RunSummary {
  file: string;
  strategy: string;
  num_workers: number;
  global_batch_size: number;
  num_steps: number;
}

export interface ValidationReport {
  schema: typeof VALIDATION_SCHEMA;
  schema_version: typeof VALIDATION_SCHEMA_VERSION;
  metric: 'loss';
  tolerance: number;
  abs_tolerance: number;
  reference: RunSummary;
  candidate: RunSummary;
  steps: StepComparison[];
  summary: {
    verdict: 'pass' | 'fail';
    steps_compared: number;
    passed: number;
    failed: number;
    max_abs_delta: number | null;
    max_rel_delta: number | null;
    first_failed_step: number | null;
    /** Why the verdict is fail (empty on pass). */
    reasons: string[];
    /** Things worth knowing that do not fail the comparison. */
    notes: string[];
  };
}

function summary(file: string, r: RunFile): RunSummary {
  return { file, strategy: r.strategy, num_workers: r.num_workers, global_batch_size: r.global_batch_size, num_steps: r.steps.length };
}

function finite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** Compares the loss of every step the two runs share; differing step counts fail. */
export function compareRuns(
  reference: { file: string; run: RunFile }, candidate: { file: string; run: RunFile }, opts: CompareOptions,
): ValidationReport {
  const candSteps = new Map(candidate.run.steps.map((s) => [s.step, s.loss as number | null]));
  const steps: StepComparison[] = [];
  for (const s of reference.run.steps) {
    if (!candSteps.has(s.step)) continue;
    const a = s.loss as number | null;
    const b = candSteps.get(s.step) ?? null;
    if (!finite(a) || !finite(b)) {
      steps.push({ step: s.step, reference: a, candidate: b, abs_delta: null, rel_delta: null, pass: false });
      continue;
    }
    const abs = Math.abs(b - a);
    const rel = a === 0 ? (abs === 0 ? 0 : Infinity) : abs / Math.abs(a);
    steps.push({ step: s.step, reference: a, candidate: b, abs_delta: abs, rel_delta: rel, pass: abs <= opts.absTolerance || rel <= opts.tolerance });
  }
  const failed = steps.filter((s) => !s.pass);
  const reasons: string[] = [];
  const notes: string[] = [];
  const [nr, nc] = [reference.run.steps.length, candidate.run.steps.length];
  if (nr !== nc) reasons.push(`step counts differ: ${nr} in ${reference.file}, ${nc} in ${candidate.file}`);
  if (steps.length === 0) reasons.push('the runs share no step');
  if (failed.length > 0) {
    reasons.push(`${failed.length} of ${steps.length} steps differ by more than the tolerance (first: step ${failed[0].step})`);
  }
  if (reference.run.global_batch_size !== candidate.run.global_batch_size) {
    notes.push(globalBatchNote(reference.run, candidate.run));
  }
  for (const k of ['dataset', 'model', 'seed'] as const) {
    if (reference.run[k] !== candidate.run[k]) notes.push(`${k} differs (${String(reference.run[k])} vs ${String(candidate.run[k])})`);
  }
  const deltas = (k: 'abs_delta' | 'rel_delta'): number | null => {
    const v = steps.map((s) => s[k]).filter((x): x is number => x !== null);
    return steps.some((s) => s[k] === null) ? null : v.length ? Math.max(...v) : null;
  };
  return {
    schema: VALIDATION_SCHEMA,
    schema_version: VALIDATION_SCHEMA_VERSION,
    metric: 'loss',
    tolerance: opts.tolerance,
    abs_tolerance: opts.absTolerance,
    reference: summary(reference.file, reference.run),
    candidate: summary(candidate.file, candidate.run),
    steps,
    summary: {
      verdict: reasons.length === 0 ? 'pass' : 'fail',
      steps_compared: steps.length,
      passed: steps.length - failed.length,
      failed: failed.length,
      max_abs_delta: deltas('abs_delta'),
      max_rel_delta: deltas('rel_delta'),
      first_failed_step: failed.length ? failed[0].step : null,
      reasons,
      notes,
    },
  };
}

/** One line on why two runs' global batches differ and how to make them equal. */
function globalBatchNote(a: RunFile, b: RunFile): string {
  const split = (r: RunFile): string => `${r.num_workers} × ${r.batch_size_per_worker}`;
  return `global batch sizes differ (${a.global_batch_size} = ${split(a)} vs ${b.global_batch_size} = ${split(b)}), so the runs do not see the same batches: ` +
    'smolcluster run\'s --batch-size is per worker, minicluster run\'s is the global batch; give both runs the same global batch';
}

/** The report as text: the runs, a table of the steps (all failing ones, a sample of the rest), the verdict. */
export function formatValidation(r: ValidationReport, maxRows = 20): string {
  const run = (label: string, s: RunSummary): string =>
    `${label} ${s.file}: ${s.strategy}, ${s.num_workers} worker${s.num_workers > 1 ? 's' : ''}, global batch ${s.global_batch_size}, ${s.num_steps} steps`;
  const num = (x: number | null, digits = 6): string => (x === null ? 'n/a' : Number.isFinite(x) ? x.toPrecision(digits) : String(x));
  const lines = [run('reference', r.reference), run('candidate', r.candidate), `tolerance: relative ${r.tolerance}, absolute ${r.abs_tolerance} (loss per step)`, ''];
  const failing = r.steps.filter((s) => !s.pass);
  // Every failing step up to maxRows; otherwise an even sample of the passing ones, first and last included.
  let shown = failing.slice(0, maxRows);
  if (shown.length === 0 && r.steps.length > 0) {
    const every = Math.max(1, Math.ceil(r.steps.length / maxRows));
    shown = r.steps.filter((s, i) => i % every === 0 || i === r.steps.length - 1);
  }
  const header = ['step', 'reference', 'candidate', 'abs delta', 'rel delta', ''];
  const rows = shown.map((s) => [String(s.step), num(s.reference), num(s.candidate), num(s.abs_delta, 3), num(s.rel_delta, 3), s.pass ? 'ok' : 'FAIL']);
  lines.push(...table(header, rows));
  if (shown.length < (failing.length || r.steps.length)) lines.push(`  … ${(failing.length || r.steps.length) - shown.length} more ${failing.length ? 'failing ' : ''}steps in the JSON report`);
  lines.push('');
  const s = r.summary;
  lines.push(`${s.passed}/${s.steps_compared} steps within tolerance; max abs delta ${num(s.max_abs_delta, 3)}, max rel delta ${num(s.max_rel_delta, 3)}`);
  for (const n of s.notes) lines.push(`note: ${n}`);
  lines.push(s.verdict === 'pass' ? 'PASS' : `FAIL: ${s.reasons.join('; ')}`);
  return `${lines.join('\n')}\n`;
}
