/**
 * The records a training run hands to its observers — one per step, one per evaluation — and the
 * observer interface itself. They live here, below the training loop, because the sinks that
 * write them (metrics.jsonl, events.jsonl, traces, W&B, progress) are in this folder and the loop
 * imports those sinks: train/ imports metrics/, never the other way.
 */
import type { ModelSpec } from '../nn/models/index.js';
import type { Device } from '../tensor/storage.js';

/** Extra per-step facts a strategy reports (e.g. which workers were late); written to metrics.jsonl. */
export type StepInfo = Record<string, number | string | boolean | number[]>;

export interface EvalResult {
  /** Mean loss per sample, or per scored token for the token tasks. */
  loss: number;
  /** Fraction of correct predictions (per scored token for the token tasks); null for regression. */
  accuracy: number | null;
  /** exp(loss) for the token tasks; null otherwise. */
  perplexity?: number | null;
  samples: number;
}

/** One optimizer step as seen by one rank; times measured around the work itself. */
export interface StepRecord {
  step: number;
  epoch: number;
  rank: number;
  /** Global-batch mean loss (equal on every rank). */
  loss: number;
  /** Samples this rank processed in the step. */
  samples: number;
  lr: number;
  computeMs: number;
  commMs: number;
  waitMs: number;
  gradNorm?: number;
  /** Per-parameter gradient L2 norms (arena entry name → norm), with `trackGradients`. */
  layerGradNorms?: Record<string, number>;
  /** What the strategy reported about the step (e.g. contributing and late workers). */
  info?: StepInfo;
  /** Wall-clock time (ms since the epoch) when the step ended. */
  time: number;
  /** When each phase of the step began, measured in the loop (the timeline of --trace). */
  marks?: StepMarks;
}

/**
 * Phase boundaries of one step, in ms since the epoch (performance.timeOrigin + performance.now(),
 * sub-millisecond), taken in the loop: forward and backward from `start`, the strategy's gradient
 * exchange from `reduce`, clipping and the optimizer (or the strategy's update) from `optimizer`,
 * the strategy's after-step work (e.g. checksums) from `afterStep`, until `end`. `exchange` and
 * `update` are the wait and communication times the strategy measured inside those phases.
 */
export interface StepMarks {
  start: number;
  reduce: number;
  optimizer: number;
  afterStep: number;
  end: number;
  exchange: { waitMs: number; commMs: number };
  update?: { waitMs: number; commMs: number };
  /** Each gradient bucket's exchange (allreduce): with --overlap they begin during forward+backward. */
  buckets?: BucketSpan[];
}

/** One bucket's exchange, in ms since the epoch (performance.timeOrigin + now). */
export interface BucketSpan {
  start: number;
  end: number;
  floats: number;
}

/** A text model's sample during training (--sample-every): what it writes after the prompt, at this step. */
export interface SampleRecord {
  step: number;
  prompt: string;
  text: string;
  /** 0: greedy. */
  temperature: number;
}

export interface EvalRecord extends EvalResult {
  step: number;
  epoch: number;
}

/**
 * A resumed run that plans another number of steps than the run it continues: a schedule over the
 * run's length (cosine, linear, wsd) is laid over the new length, so the learning rate at the
 * resumed step changes, as the HF Trainer's re-created scheduler does.
 */
export interface Rescheduled {
  plannedSteps: number;
  totalSteps: number;
  /** The learning rate at the resumed step under the old plan and under the new one. */
  lrBefore: number;
  lrAfter: number;
}

/** Receives the run's progress; every method is optional. */
export interface TrainObserver {
  /** The run continues from a checkpoint after `step` steps (before any rank's first step). */
  onResume?(step: number, file: string, rescheduled?: Rescheduled): void;
  /**
   * `device`: where the model's parameter arena lives (the device this rank trains on);
   * `tokensPerSample`: token tasks' training window (a step's tokens are its samples × it).
   */
  onStart?(info: { totalSteps: number; model: ModelSpec; parameters: number; device: Device; tokensPerSample?: number }): void;
  onStep?(r: StepRecord): void;
  onEval?(r: EvalRecord): void;
  /** Rank 0's sample of a text model's writing (--sample-every). */
  onSample?(r: SampleRecord): void;
  onEnd?(): void;
}
