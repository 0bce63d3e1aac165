/**
 * bench:parallel's pure parts: its options, the runs it compares, reading a run's figures (ours from
 * result.json + metrics.jsonl, torch from its ranks' JSON lines), telling a flag this build lacks
 * from a failure, and the table. Kept apart from the process work so test/bench/ can pin them.
 */
import { fmtNum, fmtRatio, ratio, renderTable } from './table.js';

export type LinkName = 'wifi' | 'ethernet';

export interface ParallelOptions {
  model: string;
  /** Transformer shape: the preset's unless given (both sides get the same). */
  layers: number | null;
  width: number | null;
  heads: number | null;
  context: number;
  /** Sequences per data-parallel rank per step; a pipeline trains workers × this per step. */
  batchSize: number;
  microBatches: number;
  steps: number;
  /** Steps left out of the throughput (start-up, first-touch allocation); at least 1. */
  warmup: number;
  workers: number;
  torch: boolean;
  links: LinkName | null;
  only: RowId[] | null;
}

export const ROW_IDS = ['allreduce', 'zero3', 'gpipe', '1f1b'] as const;
export type RowId = (typeof ROW_IDS)[number];

/** Each row: our CLI flags and the torch reference mode it is compared with. */
export interface RowPlan {
  id: RowId;
  ours: string;
  torch: string;
  torchMode: 'ddp' | 'fsdp2' | 'gpipe' | '1f1b';
  pipeline: boolean;
  /** ours / torch throughput the issue asks for, when it names one. */
  target: number | null;
}

export const ROWS: readonly RowPlan[] = [
  { id: 'allreduce', ours: 'allreduce (DDP)', torch: 'DDP', torchMode: 'ddp', pipeline: false, target: null },
  { id: 'zero3', ours: '--zero 3', torch: 'FSDP2 fully_shard', torchMode: 'fsdp2', pipeline: false, target: 1.2 },
  { id: 'gpipe', ours: 'pipeline gpipe', torch: 'pipelining ScheduleGPipe', torchMode: 'gpipe', pipeline: true, target: null },
  { id: '1f1b', ours: 'pipeline 1f1b', torch: 'pipelining Schedule1F1B', torchMode: '1f1b', pipeline: true, target: 1.2 },
];

/** Shapes of the GPT-2 presets (src/nn/models/presets.ts), given to the Hugging Face config too. */
export const GPT2_SHAPES: Record<string, { layers: number; width: number; heads: number; positions: number; dropout: number }> = {
  gpt2: { layers: 12, width: 768, heads: 12, positions: 1024, dropout: 0.1 },
  'gpt2-medium': { layers: 24, width: 1024, heads: 16, positions: 1024, dropout: 0.1 },
  'gpt2-mini': { layers: 6, width: 192, heads: 6, positions: 256, dropout: 0 },
  'gpt2-tiny': { layers: 2, width: 128, heads: 4, positions: 128, dropout: 0 },
};

function fail(message: string): never {
  throw new Error(`bench:parallel: ${message}`);
}

function positiveInt(flag: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min) fail(`${flag} needs an integer ≥ ${min} (got ${v ?? 'nothing'})`);
  return n;
}

export function parseParallelArgs(argv: readonly string[]): ParallelOptions {
  const o: ParallelOptions = { model: 'gpt2', layers: null, width: null, heads: null, context: 128, batchSize: 4, microBatches: 4, steps: 6, warmup: 1,
    workers: 4, torch: true, links: null, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string | undefined => argv[++i];
    if (a === '--model') o.model = v() ?? fail('--model needs a name');
    else if (a === '--layers') o.layers = positiveInt(a, v());
    else if (a === '--width') o.width = positiveInt(a, v());
    else if (a === '--heads') o.heads = positiveInt(a, v());
    else if (a === '--context') o.context = positiveInt(a, v());
    else if (a === '--batch-size') o.batchSize = positiveInt(a, v());
    else if (a === '--micro-batches') o.microBatches = positiveInt(a, v());
    else if (a === '--steps') o.steps = positiveInt(a, v());
    // ≥ 1: the timed span starts at a step's end, the same instant on both sides.
    else if (a === '--warmup') o.warmup = positiveInt(a, v());
    else if (a === '--workers') o.workers = positiveInt(a, v(), 2);
    else if (a === '--no-torch') o.torch = false;
    else if (a === '--links') {
      const l = v();
      if (l !== 'wifi' && l !== 'ethernet') fail(`--links must be wifi or ethernet (got ${l ?? 'nothing'})`);
      o.links = l;
    } else if (a === '--only') {
      const ids = (v() ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      const bad = ids.filter((id) => !(ROW_IDS as readonly string[]).includes(id));
      if (bad.length || !ids.length) fail(`--only: unknown ${bad.join(', ') || '(empty)'} (choose from ${ROW_IDS.join(', ')})`);
      o.only = ids as RowId[];
    } else fail(`unknown argument ${a}`);
  }
  if (!GPT2_SHAPES[o.model]) fail(`--model must be one of ${Object.keys(GPT2_SHAPES).join(', ')} (got ${o.model})`);
  // Two hosts on the emulated link (bench/lib/netns.ts makes a pair).
  if (o.links && argv.includes('--workers') && o.workers !== 2) fail('--links runs 2 workers (one per namespace); leave --workers out');
  if (o.links) o.workers = 2;
  if (o.steps <= o.warmup) fail(`--steps (${o.steps}) must exceed --warmup (${o.warmup}): throughput is timed after the warm-up`);
  const shape = modelShape(o);
  if (shape.layers < o.workers) fail(`a ${o.workers}-stage pipeline needs at least ${o.workers} layers (${o.model} has ${shape.layers}; pass --layers)`);
  if ((o.workers * o.batchSize) % o.microBatches !== 0) fail(`the pipeline's batch (${o.workers} × ${o.batchSize}) must divide into --micro-batches ${o.microBatches}`);
  return o;
}

export function modelShape(o: ParallelOptions): { layers: number; width: number; heads: number; positions: number; dropout: number } {
  const s = GPT2_SHAPES[o.model];
  return { ...s, layers: o.layers ?? s.layers, width: o.width ?? s.width, heads: o.heads ?? s.heads, positions: Math.max(s.positions, o.context) };
}

/** Sequences per step of the whole run: data-parallel rows per rank × workers, a pipeline the same in one batch. */
export function globalBatch(o: ParallelOptions): number {
  return o.workers * o.batchSize;
}

/** `train`/`worker` flags of a row (beside the common ones). */
export function rowFlags(row: RowPlan, o: ParallelOptions): string[] {
  if (row.id === 'zero3') return ['--zero', '3', '--batch-size', String(o.batchSize)];
  if (row.pipeline) {
    return ['--pipeline-stages', String(o.workers), '--micro-batches', String(o.microBatches), '--pipeline-schedule', row.id, '--batch-size', String(globalBatch(o))];
  }
  return ['--batch-size', String(o.batchSize)];
}

/** The row's flags this build's `train --help` does not list (the row is then not run). */
export function missingFlags(help: string, flags: readonly string[]): string[] {
  return flags.filter((f) => f.startsWith('--') && !new RegExp(`(^|\\s)${f.replace(/[-]/g, '\\-')}(\\s|,|$)`, 'm').test(help));
}

/** A run that failed because this build does not know a flag or value: the flag, else null (a real failure). */
export function unknownFlagIn(stderr: string): string | null {
  const unknown = /unknown option '(--[\w-]+)'/.exec(stderr);
  if (unknown) return unknown[1];
  const invalid = /option '(--[\w-]+)[^']*' argument '([^']*)' is invalid/.exec(stderr);
  return invalid ? `${invalid[1]} ${invalid[2]}` : null;
}

/** Tokens per second over the steps after `warmup`: from the end of step warmup−1 (or `startMs`) to the last end. */
export function tokensPerSec(stepEndsMs: readonly number[], tokensPerStep: number, warmup: number, startMs?: number): number | null {
  if (stepEndsMs.length <= warmup) return null;
  const from = warmup === 0 ? startMs : stepEndsMs[warmup - 1];
  if (from === undefined) return null;
  const ms = stepEndsMs[stepEndsMs.length - 1] - from;
  return ms > 0 ? ((stepEndsMs.length - warmup) * tokensPerStep * 1000) / ms : null;
}

export interface OursFigures {
  /** Rank 0's step ends (metrics.jsonl `time`), in step order. */
  stepEnds: number[];
  /** result.json `samples_per_sec` (training time only, the whole run). */
  resultSamplesPerSec: number | null;
  /** Bytes every rank wrote per step, summed over ranks (metrics `bytes_sent`, after the warm-up), when the strategy reports it. */
  bytesPerStep: number | null;
  /** Per-rank peak RSS the run reported itself (metrics `peak_rss_bytes`), by rank. */
  reportedPeakRss: number[];
  finalLoss: number | null;
  /** A pipeline run's measured bubble fraction and its 1F1B target (result.json `pipeline`), when present. */
  bubble: { measured: number; target: number | null } | null;
}

/** Reads our run's figures from its result.json object and metrics.jsonl text. */
export function oursFigures(result: Record<string, unknown>, metricsText: string, warmup: number): OursFigures {
  const steps = metricsText.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.kind === 'step');
  const stepEnds = steps.filter((r) => r.rank === 0).sort((a, b) => (a.step as number) - (b.step as number)).map((r) => r.time as number);
  const later = steps.filter((r) => (r.step as number) >= warmup);
  const sent = later.filter((r) => typeof r.bytes_sent === 'number');
  const stepsCounted = new Set(sent.map((r) => r.step)).size;
  const peaks = new Map<number, number>();
  for (const r of steps) if (typeof r.peak_rss_bytes === 'number') peaks.set(r.rank as number, Math.max(peaks.get(r.rank as number) ?? 0, r.peak_rss_bytes));
  return {
    stepEnds,
    resultSamplesPerSec: typeof result.samples_per_sec === 'number' ? result.samples_per_sec : null,
    bytesPerStep: stepsCounted ? sent.reduce((s, r) => s + (r.bytes_sent as number), 0) / stepsCounted : null,
    reportedPeakRss: [...peaks.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v),
    finalLoss: typeof result.final_loss === 'number' ? result.final_loss : null,
    bubble: pipelineBubble(result.pipeline),
  };
}

function pipelineBubble(p: unknown): OursFigures['bubble'] {
  if (typeof p !== 'object' || p === null) return null;
  const { bubble_fraction: measured, one_f_one_b_target: target } = p as Record<string, unknown>;
  return typeof measured === 'number' ? { measured, target: typeof target === 'number' ? target : null } : null;
}

export interface TorchRankLine { rank: number; error?: string; step_end_times_ms?: number[]; start_ms?: number; peak_rss_bytes?: number; base_rss_bytes?: number }

/** The first error a torch rank reported (its exception's first line), else null. */
export function torchError(lines: readonly (TorchRankLine | null)[]): string | null {
  return lines.find((l) => l?.error)?.error ?? null;
}

/** A measured side of a row, or why it has no figures. */
export type Side =
  | { status: 'ran'; tokensPerSec: number | null; peakRssBytes: number[]; bytesPerStep: number | null; note?: string }
  | { status: 'not available'; why: string }
  | { status: 'failed'; why: string }
  | { status: 'skipped'; why: string };

export interface RowResult { plan: RowPlan; ours: Side; torch: Side }

const MiB = 2 ** 20;

function maxOf(xs: readonly number[]): number | null {
  return xs.length ? Math.max(...xs) : null;
}

function throughputCell(s: Side): string {
  if (s.status === 'ran') return fmtNum(s.tokensPerSec, 0);
  return s.status === 'not available' ? 'not available in this build' : `${s.status}: ${s.why}`;
}

function memCell(s: Side): string {
  return s.status === 'ran' && s.peakRssBytes.length ? `${fmtNum(maxOf(s.peakRssBytes)! / MiB, 0)} MiB` : '—';
}

function wireCell(s: Side): string {
  return s.status === 'ran' && s.bytesPerStep !== null ? `${fmtNum(s.bytesPerStep / MiB, 2)} MiB` : '—';
}

/** ours / torch throughput, when both ran. */
export function rowRatio(r: RowResult): number | null {
  return r.ours.status === 'ran' && r.torch.status === 'ran' ? ratio(r.ours.tokensPerSec, r.torch.tokensPerSec) : null;
}

/** Whether ours held at most torch's per-rank peak memory (the largest rank of each), when both ran. */
export function memoryNotAbove(r: RowResult): boolean | null {
  if (r.ours.status !== 'ran' || r.torch.status !== 'ran') return null;
  const a = maxOf(r.ours.peakRssBytes);
  const b = maxOf(r.torch.peakRssBytes);
  return a === null || b === null ? null : a <= b;
}

function verdict(r: RowResult): string {
  const x = rowRatio(r);
  if (r.plan.target === null || x === null) return '';
  const fast = x >= r.plan.target;
  const mem = r.plan.id === 'zero3' ? memoryNotAbove(r) : true;
  return fast && mem !== false ? 'met' : `not met${!fast ? ` (< ${r.plan.target.toFixed(2)}×)` : ''}${mem === false ? ' (more memory)' : ''}`;
}

/** The report's table: one line per row, ours beside torch. */
export function parallelTable(rows: readonly RowResult[], withWire: boolean): string {
  const cols = [{ header: 'run' }, { header: 'ours tokens/s', align: 'right' as const }, { header: 'ours peak RSS/rank', align: 'right' as const },
    ...(withWire ? [{ header: 'ours wire/step', align: 'right' as const }] : []),
    { header: 'torch' }, { header: 'torch tokens/s', align: 'right' as const }, { header: 'torch peak RSS/rank', align: 'right' as const },
    ...(withWire ? [{ header: 'torch wire/step', align: 'right' as const }] : []),
    { header: 'ours/torch', align: 'right' as const }, { header: 'target' }, { header: 'verdict' }];
  return renderTable(cols, rows.map((r) => [r.plan.ours, throughputCell(r.ours), memCell(r.ours), ...(withWire ? [wireCell(r.ours)] : []),
    r.plan.torch, throughputCell(r.torch), memCell(r.torch), ...(withWire ? [wireCell(r.torch)] : []),
    fmtRatio(rowRatio(r)), r.plan.target === null ? '' : `≥ ${r.plan.target.toFixed(2)}×${r.plan.id === 'zero3' ? ', ≤ memory' : ''}`, verdict(r)]));
}

/** Wire mode: which of data parallelism and the pipeline was faster on the link, per side. */
export function pipelineVersusDataParallel(rows: readonly RowResult[], side: 'ours' | 'torch'): string | null {
  const dp = rows.find((r) => r.plan.id === 'allreduce')?.[side];
  const pp = rows.find((r) => r.plan.id === '1f1b')?.[side];
  if (dp?.status !== 'ran' || pp?.status !== 'ran') return null;
  const x = ratio(pp.tokensPerSec, dp.tokensPerSec);
  if (x === null) return null;
  return `${side}: 1F1B pipeline ${fmtRatio(x)} the data-parallel throughput${dp.bytesPerStep && pp.bytesPerStep ? `, ${fmtRatio(pp.bytesPerStep / dp.bytesPerStep)} its bytes on the wire per step` : ''}`;
}
