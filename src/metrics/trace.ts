import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic_file.js';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { EvalRecord, StepRecord, TrainObserver } from './records.js';
import { JsonlWriter } from './jsonl.js';

/**
 * --trace: a timeline of every rank's steps in Chrome's Trace Event Format (chrome://tracing,
 * Perfetto), like Horovod's timeline. One process per rank (pid = rank) with named tracks —
 * compute, communication, wait, gradient buckets — and a span for each phase of each step, placed at the boundaries
 * the training loop measured (StepRecord.marks).
 *
 * While the run goes, every rank appends its events to the shared `trace.jsonl` (one event per
 * line); at the end, whoever owns the run (rank 0, or the local launcher — also after a failure)
 * turns it into `trace.json`, with times counted from the run's first event.
 */
export const TRACE_FILE = 'trace.json';
/** trace.json names its schema in `otherData` (the Trace Event Format's free-form object; docs/METRICS.md). */
export const TRACE_SCHEMA = 'smolcluster-trace';
export const TRACE_SCHEMA_VERSION = 1;
export const TRACE_STAGING_FILE = 'trace.jsonl';

/** Track (thread) ids inside a rank's process. */
export const TRACKS = { compute: 1, comm: 2, wait: 3, buckets: 4 } as const;
const TRACK_NAMES: Record<number, string> = { 1: 'compute', 2: 'communication', 3: 'wait', 4: 'gradient buckets' };

/** One Trace Event (the subset used here: complete spans, instants, metadata). */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'i' | 'M';
  pid: number;
  tid: number;
  /** Microseconds; absolute (since the epoch) in trace.jsonl, from the run's start in trace.json. */
  ts?: number;
  dur?: number;
  cat?: string;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

/** Spans shorter than this (µs) are left out: they are invisible and only bloat the file. */
const MIN_SPAN_US = 1;

/** The spans of one step, from the phase boundaries measured in the loop. */
export function stepSpans(r: StepRecord): TraceEvent[] {
  const m = r.marks;
  if (!m) return [];
  const out: TraceEvent[] = [];
  const args = { step: r.step };
  const span = (name: string, tid: number, from: number, to: number): void => {
    const dur = (to - from) * 1000;
    if (dur >= MIN_SPAN_US) out.push({ name, cat: TRACK_NAMES[tid], ph: 'X', pid: r.rank, tid, ts: from * 1000, dur, args });
  };
  span('forward+backward', TRACKS.compute, m.start, m.reduce);
  // Inside the strategy's exchange: the wait for the slowest rank comes first, the transfer ends
  // the phase (docs/EXPERIMENTS.md); what lies between is the strategy's own compute.
  span('wait for peers', TRACKS.wait, m.reduce, Math.min(m.optimizer, m.reduce + m.exchange.waitMs));
  span('exchange gradients', TRACKS.comm, Math.max(m.reduce, m.optimizer - m.exchange.commMs), m.optimizer);
  // The strategy's own work between the two (e.g. scaling gradients) is compute.
  span('strategy', TRACKS.compute, m.reduce + m.exchange.waitMs, m.optimizer - m.exchange.commMs);
  if (m.update) {
    span('wait for update', TRACKS.wait, m.optimizer, Math.min(m.afterStep, m.optimizer + m.update.waitMs));
    span('update', TRACKS.comm, Math.max(m.optimizer, m.afterStep - m.update.commMs), m.afterStep);
  } else {
    span('optimizer', TRACKS.compute, m.optimizer, m.afterStep);
  }
  span('after step', TRACKS.comm, m.afterStep, m.end);
  // Each bucket's all-reduce on its own track: with --overlap they start inside forward+backward.
  m.buckets?.forEach((b, k) => span(`bucket ${k} (${b.floats} floats)`, TRACKS.buckets, b.start, b.end));
  return out;
}

/** Names the rank's process and its tracks. */
export function rankMetadata(rank: number, host: string): TraceEvent[] {
  const out: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: rank, tid: 0, args: { name: `rank ${rank} (${host})` } },
    { name: 'process_sort_index', ph: 'M', pid: rank, tid: 0, args: { sort_index: rank } },
  ];
  for (const [tid, name] of Object.entries(TRACK_NAMES)) {
    out.push({ name: 'thread_name', ph: 'M', pid: rank, tid: Number(tid), args: { name } });
    out.push({ name: 'thread_sort_index', ph: 'M', pid: rank, tid: Number(tid), args: { sort_index: Number(tid) } });
  }
  return out;
}

/** Records one rank's spans into the run folder's trace.jsonl. */
export class TraceObserver implements TrainObserver {
  private readonly out: JsonlWriter;
  /** End of the last step (ms since the epoch): an evaluation runs from there until onEval. */
  private lastEnd = NaN;

  constructor(dir: string, private readonly rank: number, private readonly host: string) {
    this.out = new JsonlWriter(join(dir, TRACE_STAGING_FILE), 256);
  }

  onStart(): void {
    for (const e of rankMetadata(this.rank, this.host)) this.out.write(e);
  }

  onStep(r: StepRecord): void {
    for (const e of stepSpans(r)) this.out.write(e);
    if (r.marks) this.lastEnd = r.marks.end;
  }

  onEval(r: EvalRecord): void {
    const now = performance.timeOrigin + performance.now();
    if (Number.isNaN(this.lastEnd)) return;
    this.out.write({
      name: 'evaluation', cat: 'compute', ph: 'X', pid: this.rank, tid: TRACKS.compute, ts: this.lastEnd * 1000, dur: (now - this.lastEnd) * 1000,
      args: { step: r.step, test_loss: r.loss, test_accuracy: r.accuracy },
    });
    this.lastEnd = now;
  }

  onEnd(): void {
    this.out.close();
  }
}

/**
 * At the run's start (rank 0, before any rank records): an old trace.json goes; with `tracing`,
 * trace.jsonl is emptied — truncated, not removed, as other ranks may already hold it open.
 */
export function resetTrace(dir: string, tracing: boolean): void {
  rmSync(join(dir, TRACE_FILE), { force: true });
  const staging = join(dir, TRACE_STAGING_FILE);
  if (tracing) writeFileSync(staging, '');
  else rmSync(staging, { force: true });
}

/**
 * Turns the run folder's trace.jsonl into trace.json (a line cut short by a killed process is
 * skipped) and removes trace.jsonl. Returns trace.json's path, or null when there was nothing to do.
 */
export function finalizeTrace(dir: string): string | null {
  const staging = join(dir, TRACE_STAGING_FILE);
  if (!existsSync(staging)) return null;
  const events: TraceEvent[] = [];
  for (const line of readFileSync(staging, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      events.push(JSON.parse(line) as TraceEvent);
    } catch {
      // the last line of a process killed mid-write
    }
  }
  let origin = Infinity;
  for (const e of events) if (e.ts !== undefined) origin = Math.min(origin, e.ts);
  if (!Number.isFinite(origin)) origin = 0;
  for (const e of events) {
    if (e.ts !== undefined) e.ts = round3(e.ts - origin);
    if (e.dur !== undefined) e.dur = round3(e.dur);
  }
  // Metadata first, then spans in time order (viewers do not need it; people reading the file do).
  events.sort((a, b) => (a.ph === 'M' ? -1 : 0) - (b.ph === 'M' ? -1 : 0) || (a.ts ?? 0) - (b.ts ?? 0) || a.pid - b.pid);
  const file = join(dir, TRACE_FILE);
  const body = events.map((e) => JSON.stringify(e)).join(',\n');
  const otherData = { schema: TRACE_SCHEMA, schema_version: TRACE_SCHEMA_VERSION, producer: 'smolcluster', origin_epoch_us: origin };
  writeFileAtomic(file, `{"displayTimeUnit":"ms","otherData":${JSON.stringify(otherData)},"traceEvents":[\n${body}\n]}\n`);
  rmSync(staging, { force: true });
  return file;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
