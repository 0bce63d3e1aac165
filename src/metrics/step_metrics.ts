import { readFileSync, writeFileSync } from 'node:fs';
import type { EvalRecord, SampleRecord, StepRecord, TrainObserver } from './records.js';
import { JsonlWriter } from './jsonl.js';

/** Schema of one metrics.jsonl line (docs/METRICS.md); lines before it was named carried `"v": 1`. */
export const METRICS_SCHEMA = 'smolcluster-metrics';
export const METRICS_SCHEMA_VERSION = 1;
/** What begins every line. */
const HEAD = { schema: METRICS_SCHEMA, schema_version: METRICS_SCHEMA_VERSION } as const;

/**
 * A resumed run's metrics.jsonl (`file`) cut to what happened before its checkpoint, taken after
 * `step` steps: the records of earlier steps, those of the kinds `atTheStep` (evaluations and
 * samples, made after a step and before its checkpoint) up to it, and lines with no step; a line
 * cut short by the interruption goes. Rewritten in place (same inode: other ranks' append
 * descriptors stay valid). Returns the records kept ([] where there is no file yet).
 */
export function keepRecordsBefore(file: string, step: number, atTheStep: readonly string[]): Record<string, unknown>[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const kept: { line: string; record: Record<string, unknown> }[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let r: { kind?: unknown; step?: unknown };
    try {
      r = JSON.parse(line) as { kind?: unknown; step?: unknown };
    } catch {
      continue;
    }
    const s = r.step;
    if (typeof s !== 'number' || s < step || (atTheStep.includes(String(r.kind)) && s <= step)) kept.push({ line, record: r as Record<string, unknown> });
  }
  writeFileSync(file, kept.length ? `${kept.map((k) => k.line).join('\n')}\n` : '');
  return kept.map((k) => k.record);
}

/**
 * Writes every step of this rank to metrics.jsonl (kind "step"), and evaluations (kind "eval",
 * rank 0 only), with the times measured in the training loop.
 */
export class StepMetricsObserver implements TrainObserver {
  private readonly out: JsonlWriter;
  /** Token tasks: the training window, so each step line carries its tokens (the dashboard's tokens/s). */
  private tokensPerSample: number | undefined;

  /** `flushEvery` 1: every step reaches the file at once (an elastic run's records must survive a SIGKILL). */
  constructor(file: string, private readonly rank: number, flushEvery = 64) {
    this.out = new JsonlWriter(file, flushEvery);
  }

  /**
   * A resumed run retakes the steps after its checkpoint: rank 0 drops the interrupted run's records
   * of them (before any rank's first step, so no other rank is writing), and metrics.jsonl reads as
   * one uninterrupted run.
   */
  onResume(step: number): void {
    if (this.rank !== 0) return;
    this.out.flush();
    keepRecordsBefore(this.out.file, step, ['eval', 'sample']);
  }

  onStart(info: { tokensPerSample?: number }): void {
    this.tokensPerSample = info.tokensPerSample;
  }

  onStep(r: StepRecord): void {
    this.out.write({
      ...HEAD, kind: 'step', step: r.step, epoch: r.epoch, rank: r.rank, loss: r.loss,
      samples: r.samples, ...(this.tokensPerSample !== undefined ? { tokens: r.samples * this.tokensPerSample } : {}), lr: r.lr, compute_ms: round3(r.computeMs), comm_ms: round3(r.commMs),
      wait_ms: round3(r.waitMs), ...(r.gradNorm !== undefined ? { grad_norm: r.gradNorm } : {}),
      ...(r.layerGradNorms ? { layer_grad_norms: r.layerGradNorms } : {}), ...r.info, time: r.time,
    });
  }

  onEval(r: EvalRecord): void {
    if (this.rank !== 0) return;
    this.out.write({ ...HEAD, kind: 'eval', step: r.step, epoch: r.epoch, rank: 0, test_loss: r.loss, test_accuracy: r.accuracy, ...(r.perplexity != null ? { test_perplexity: r.perplexity } : {}), time: Date.now() });
  }

  /** Kind "sample" (rank 0, --sample-every): the prompt and the text the model wrote after it. */
  onSample(r: SampleRecord): void {
    if (this.rank !== 0) return;
    this.out.write({ ...HEAD, kind: 'sample', step: r.step, rank: 0, prompt: r.prompt, text: r.text, temperature: r.temperature, time: Date.now() });
  }

  onEnd(): void {
    this.out.close();
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
