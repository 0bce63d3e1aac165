import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SmolError } from '../util/errors.js';
import { EVENTS_FILE, EVENTS_SCHEMA, EVENTS_SCHEMA_VERSION, type EventRecord } from './events.js';
import type { ResultFile } from './result_file.js';
import { METRICS_SCHEMA, METRICS_SCHEMA_VERSION } from './step_metrics.js';
import { snakeCaseKeys } from '../util/snake_case.js';

/**
 * Reads what a run leaves behind (docs/EXPERIMENTS.md): an experiment folder's config.json,
 * metrics.jsonl, events.jsonl and result.json, a result.json alone, or the run.json of
 * `smolcluster run` (docs/RUN.md: per-step measurements of every rank). Every file's schema version is checked; a file this version cannot read is refused with an
 * error naming the file (and line). A last line without its newline is a line still being written
 * (a live run) or cut short (a killed process): it is skipped when it does not parse.
 */

export const CONFIG_SCHEMA = 'smolcluster-config';
export const CONFIG_SCHEMA_VERSION = 1;
export const RESULT_SCHEMA = 'smolcluster-train-result';
export const RESULT_SCHEMA_VERSION = 1;
/** run.json, written by `smolcluster run` (src/validate/run_file.ts). */
export const RUN_FILE_SCHEMA = 'smolcluster-run';
export const RUN_FILE_SCHEMA_VERSION = 1;

/** A run file that is missing, malformed, or of a schema version this smolcluster cannot read. */
export class ExperimentFileError extends SmolError {
  constructor(readonly file: string, message: string, readonly line?: number) {
    super('FORMAT', `${file}${line !== undefined ? `:${line}` : ''}: ${message}`);
  }
}

/** A metrics.jsonl line of kind "step" (docs/METRICS.md); loss is null when the rank had no batch. */
export interface StepLine {
  /** The schema's version: `schema_version` (with `schema`), or `v` in lines written before they were named. */
  schema?: string;
  schema_version?: number;
  v?: number;
  kind: 'step';
  step: number;
  epoch: number;
  rank: number;
  loss: number | null;
  samples: number;
  /** Token tasks: samples × the training window. */
  tokens?: number;
  lr: number;
  compute_ms: number;
  comm_ms: number;
  wait_ms: number;
  grad_norm?: number;
  time: number;
  [key: string]: unknown;
}

/** A metrics.jsonl line of kind "eval". */
export interface EvalLine {
  schema?: string;
  schema_version?: number;
  v?: number;
  kind: 'eval';
  step: number;
  epoch: number;
  rank: number;
  test_loss: number;
  test_accuracy: number | null;
  /** Token tasks: exp(test_loss). */
  test_perplexity?: number;
  time: number;
  [key: string]: unknown;
}

export interface MetricsData {
  steps: StepLine[];
  evals: EvalLine[];
  /** Lines of kinds this version does not know (kept, not interpreted). */
  other: Array<Record<string, unknown>>;
}

/** config.json: the resolved training configuration, plus workers and strategy. */
export type RunConfig = Record<string, unknown> & { workers?: number; strategy?: string; model?: string };

export interface Run {
  /** What was loaded (folder or file), as given. */
  source: string;
  /** The experiment folder, or null for a file read alone. */
  dir: string | null;
  name: string;
  config: RunConfig | null;
  metrics: MetricsData;
  events: EventRecord[];
  result: ResultFile | null;
}

/** Validates one metrics.jsonl line; `where` names it in errors. */
export function parseMetricsLine(value: unknown, file: string, line?: number): { kind: 'step'; rec: StepLine } | { kind: 'eval'; rec: EvalLine } | { kind: 'other'; rec: Record<string, unknown> } {
  const rec = versioned(value, METRICS_SCHEMA, METRICS_SCHEMA_VERSION, file, line);
  if (typeof rec.kind !== 'string') throw new ExperimentFileError(file, 'line has no "kind"', line);
  if (rec.kind === 'step' || rec.kind === 'eval') {
    for (const k of ['step', 'rank', 'time']) {
      if (typeof rec[k] !== 'number') throw new ExperimentFileError(file, `"${rec.kind}" line has no numeric "${k}"`, line);
    }
    return rec.kind === 'step' ? { kind: 'step', rec: rec as StepLine } : { kind: 'eval', rec: rec as EvalLine };
  }
  return { kind: 'other', rec };
}

/** Validates one events.jsonl line. */
export function parseEventLine(value: unknown, file: string, line?: number): EventRecord {
  const rec = versioned(value, EVENTS_SCHEMA, EVENTS_SCHEMA_VERSION, file, line);
  if (typeof rec.kind !== 'string') throw new ExperimentFileError(file, 'event has no "kind"', line);
  if (typeof rec.time !== 'number') throw new ExperimentFileError(file, 'event has no numeric "time"', line);
  return rec as EventRecord;
}

export function readMetrics(file: string): MetricsData {
  const out: MetricsData = { steps: [], evals: [], other: [] };
  for (const { value, line } of readJsonl(file)) addMetric(out, parseMetricsLine(value, file, line));
  return out;
}

export function readEvents(file: string): EventRecord[] {
  return readJsonl(file).map(({ value, line }) => parseEventLine(value, file, line));
}

/** config.json, keys in snake_case whichever spelling wrote it (files before schema 1 were camelCase). */
export function readConfig(file: string): RunConfig {
  const c = readJson(file);
  if (c.schema !== undefined) checkSchema(c, 'schema', 'schema_version', CONFIG_SCHEMA, CONFIG_SCHEMA_VERSION, file);
  return snakeCaseKeys(c) as RunConfig;
}

/** result.json; its `config` in snake_case whichever spelling wrote it (earlier files nested it camelCase). */
export function readResult(file: string): ResultFile {
  const r = readJson(file);
  checkSchema(r, 'schema', 'schema_version', RESULT_SCHEMA, RESULT_SCHEMA_VERSION, file);
  return { ...r, config: snakeCaseKeys(r.config ?? {}) } as unknown as ResultFile;
}

/**
 * An experiment folder, a result.json (with its folder's other files, when beside it), or a
 * run.json (its experiment folder when that still exists, else the per-rank steps it holds).
 */
export function loadRun(path: string): Run {
  if (!existsSync(path)) throw new ExperimentFileError(path, 'no such file or folder');
  if (statSync(path).isDirectory()) return loadFolder(path, path);
  if (['config.json', 'metrics.jsonl', EVENTS_FILE].includes(basename(path))) return loadFolder(dirname(path), path);
  const doc = readJson(path);
  if (doc.schema === RUN_FILE_SCHEMA) return loadRunFile(doc, path);
  if (doc.schema === RESULT_SCHEMA) {
    const result = readResult(path);
    const dir = dirname(path);
    const folder = ['config.json', 'metrics.jsonl', EVENTS_FILE].some((f) => existsSync(join(dir, f)));
    if (folder) return { ...loadFolder(dir, path), result };
    return { source: path, dir: null, name: basename(path).replace(/\.json$/, ''), config: result.config as unknown as RunConfig, metrics: emptyMetrics(), events: [], result };
  }
  throw new ExperimentFileError(path, `not a smolcluster run: expected an experiment folder, a result.json ("schema": "${RESULT_SCHEMA}") or a run.json ("schema": "${RUN_FILE_SCHEMA}")`);
}

function loadFolder(dir: string, source: string): Run {
  const f = (name: string): string => join(dir, name);
  const present = ['config.json', 'metrics.jsonl', EVENTS_FILE, 'result.json'].filter((n) => existsSync(f(n)));
  if (present.length === 0) throw new ExperimentFileError(dir, 'not an experiment folder (no config.json, metrics.jsonl, events.jsonl or result.json)');
  return {
    source, dir, name: basename(resolve(dir)),
    config: existsSync(f('config.json')) ? readConfig(f('config.json')) : null,
    metrics: existsSync(f('metrics.jsonl')) ? readMetrics(f('metrics.jsonl')) : emptyMetrics(),
    events: existsSync(f(EVENTS_FILE)) ? readEvents(f(EVENTS_FILE)) : [],
    result: existsSync(f('result.json')) ? readResult(f('result.json')) : null,
  };
}

function loadRunFile(doc: Record<string, unknown>, file: string): Run {
  checkSchema(doc, 'schema', 'schema_version', RUN_FILE_SCHEMA, RUN_FILE_SCHEMA_VERSION, file);
  const dir = typeof doc.experiment_dir === 'string' ? doc.experiment_dir : null;
  if (dir && existsSync(join(dir, 'metrics.jsonl'))) return { ...loadFolder(dir, file), source: file };
  if (!Array.isArray(doc.steps)) throw new ExperimentFileError(file, '"steps" is not a list');
  const metrics = emptyMetrics();
  for (const [i, s] of (doc.steps as Array<Record<string, unknown>>).entries()) {
    if (typeof s?.step !== 'number' || !Array.isArray(s.ranks)) throw new ExperimentFileError(file, `steps[${i}] has no "step" or "ranks"`);
    for (const r of s.ranks as Array<Record<string, number>>) {
      metrics.steps.push({
        schema: METRICS_SCHEMA, schema_version: METRICS_SCHEMA_VERSION, kind: 'step', step: s.step, epoch: 0, rank: r.rank, loss: typeof s.loss === 'number' ? s.loss : null,
        samples: r.samples, lr: NaN, compute_ms: r.compute_ms, comm_ms: r.allreduce_ms, wait_ms: r.wait_ms, time: Number(s.time),
      });
    }
  }
  const config = (doc.config ? snakeCaseKeys(doc.config) : null) as RunConfig | null;
  return {
    source: file, dir: null, name: basename(file).replace(/\.json$/, ''),
    config: config ? { ...config, workers: Number(doc.num_workers), strategy: String(doc.strategy) } : null,
    metrics, events: [], result: null,
  };
}

function addMetric(out: MetricsData, m: ReturnType<typeof parseMetricsLine>): void {
  if (m.kind === 'step') out.steps.push(m.rec);
  else if (m.kind === 'eval') out.evals.push(m.rec);
  else out.other.push(m.rec);
}

function emptyMetrics(): MetricsData {
  return { steps: [], evals: [], other: [] };
}

/** The parsed lines of a JSON-lines file, numbered from 1; a trailing partial line that does not parse is skipped. */
function readJsonl(file: string): Array<{ value: unknown; line: number }> {
  const text = readText(file);
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text === '';
  const out: Array<{ value: unknown; line: number }> = [];
  lines.forEach((l, i) => {
    if (l.trim() === '') return;
    const last = i === lines.length - 1;
    try {
      out.push({ value: JSON.parse(l), line: i + 1 });
    } catch {
      if (last && !complete) return;
      throw new ExperimentFileError(file, `not JSON: ${l.slice(0, 80)}`, i + 1);
    }
  });
  return out;
}

function readJson(file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readText(file));
  } catch (e) {
    if (e instanceof ExperimentFileError) throw e;
    throw new ExperimentFileError(file, `not JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ExperimentFileError(file, 'expected a JSON object');
  return v as Record<string, unknown>;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ExperimentFileError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * A JSON-lines record of schema `name` with a readable version: `schema` + `schema_version`, or the
 * `v` of lines written before the schemas were named.
 */
function versioned(value: unknown, name: string, supported: number, file: string, line?: number): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ExperimentFileError(file, 'expected a JSON object', line);
  const rec = value as Record<string, unknown>;
  if (rec.schema !== undefined && rec.schema !== name) throw new ExperimentFileError(file, `"schema" is ${JSON.stringify(rec.schema)}, expected "${name}"`, line);
  const v = rec.schema_version ?? rec.v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ExperimentFileError(file, 'line has no schema version "v" or "schema_version"', line);
  if (v > supported) throw new ExperimentFileError(file, `schema version ${v} is newer than this smolcluster reads (${supported}); upgrade smolcluster`, line);
  return rec;
}

function checkSchema(doc: Record<string, unknown>, nameKey: string, versionKey: string, name: string, supported: number, file: string): void {
  if (doc[nameKey] !== name) throw new ExperimentFileError(file, `"${nameKey}" is ${JSON.stringify(doc[nameKey])}, expected "${name}"`);
  const v = doc[versionKey];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ExperimentFileError(file, `no "${versionKey}"`);
  if (v > supported) throw new ExperimentFileError(file, `${name} version ${v} is newer than this smolcluster reads (${supported}); upgrade smolcluster`);
}
