/**
 * bench:generate's child for this engine: greedy generation on --threads compute threads. Batch 1 goes through
 * generateStream (what `smolcluster generate` runs: cached forward, logits read, sampling); a batch
 * of equal-length sequences is one cached forward per step over all rows (a KvCache of a
 * SequenceCache per row, as the server's DecodeBatch steps them), the argmax taken per row. A bf16
 * run's model holds its weight casts for its life (generate/model_casts.ts), as a model loaded by
 * `generate`/`serve --precision bf16` does: the warm-up generations cast them and pack them for
 * products of several rows (packed_weights.ts), so the timed prefill is what a server that has
 * served a request and a batch sees (transformers' model is bf16 at load, too). Both reuse a step's
 * buffers at the next step (generate/inference_forward.ts stepRecycler), as generate and DecodeBatch do.
 * The weights move into huge pages first (generate/weight_pages.ts), as loadGenerator moves them.
 */
import { generateStream, type CausalLm } from '../../src/generate/generate.js';
import { inferenceForward, stepRecycler, weightCasts } from '../../src/generate/inference_forward.js';
import { KvCache, SequenceCache } from '../../src/generate/kv_cache.js';
import { holdBf16Casts } from '../../src/generate/model_casts.js';
import { holdWeightsInHugePages } from '../../src/generate/weight_pages.js';
import type { Module } from '../../src/nn/module.js';
import { Tensor, backend, type Precision } from '../../src/tensor/index.js';
import { type GenerationRun, WARM_UP_GENERATIONS, WARM_UP_TOKENS, besideRun, cpuNow, prepareBesideRun } from './generation_run.js';

/** Batch 1 through generateStream: the first yield ends prefill. */
async function runOne(model: CausalLm, prompt: number[], newTokens: number, precision: Precision): Promise<GenerationRun> {
  const c0 = cpuNow();
  const t0 = performance.now();
  let [t1, c1] = [t0, c0];
  const ids: number[] = [];
  for await (const id of generateStream(model, prompt, { maxNewTokens: newTokens, precision })) {
    if (ids.length === 0) [t1, c1] = [performance.now(), cpuNow()];
    ids.push(id);
  }
  const [t2, c2] = [performance.now(), cpuNow()];
  return { batch: 1, promptTokens: prompt.length, newTokens: ids.length, prefillMs: t1 - t0, decodeMs: t2 - t1, cpuShare: (c2 - c0) / (t2 - t0), decodeCpuMs: c2 - c1, firstIds: ids };
}

/** The last position's argmax of each row of [B, T, vocab] logits. */
async function lastArgmax(logits: Tensor): Promise<number[]> {
  const [batch, steps, vocab] = logits.shape;
  const values = await logits.read();
  return Array.from({ length: batch }, (_, b) => {
    const row = (b * steps + steps - 1) * vocab;
    let best = 0;
    for (let i = 1; i < vocab; i++) if (values[row + i] > values[row + best]) best = i;
    return best;
  });
}

/** A batch of equal-length prompts: one cached forward per step over all rows. */
async function runBatch(model: CausalLm, prompts: number[][], newTokens: number, precision: Precision): Promise<GenerationRun> {
  const cache = new KvCache(prompts.map(() => new SequenceCache()), { lastPositionOnly: true });
  const casts = weightCasts(model, precision);
  const recycler = stepRecycler(model, precision);
  const step = async (rows: number[][]): Promise<number[]> => {
    const input = Tensor.from(rows.flat(), [rows.length, rows[0].length], 'int32');
    const logits = inferenceForward(model, input, cache, precision, casts, recycler);
    cache.advance(rows[0].length);
    return lastArgmax(logits);
  };
  const c0 = cpuNow();
  const t0 = performance.now();
  let next = await step(prompts);
  const [t1, c1] = [performance.now(), cpuNow()];
  const first = [next[0]];
  for (let i = 1; i < newTokens; i++) {
    next = await step(next.map((id) => [id]));
    first.push(next[0]);
  }
  const [t2, c2] = [performance.now(), cpuNow()];
  return { batch: prompts.length, promptTokens: prompts[0].length, newTokens, prefillMs: t1 - t0, decodeMs: t2 - t1, cpuShare: (c2 - c0) / (t2 - t0), decodeCpuMs: c2 - c1, firstIds: first };
}

/**
 * Warm-up (a short batch of the largest timed size, then WARM_UP_GENERATIONS batch-1 runs of
 * WARM_UP_TOKENS), then one timed run per batch size, on `threads` compute threads.
 */
export async function oursGeneration(make: () => Module, prompts: number[][], batches: number[], newTokens: number, precision: Precision, threads: number): Promise<GenerationRun[]> {
  backend().setThreads(threads);
  const model = make() as unknown as CausalLm;
  model.eval();
  holdWeightsInHugePages(model);
  if (precision === 'bf16') holdBf16Casts(model);
  // The batch first: a held cast packs at its first product of more rows than the thin kernel takes
  // (packed_weights.ts THIN_ROWS; the lm head's is a batch's), once per model; and the batch's rows
  // change the decode path's type feedback, so it goes before the batch-1 runs that settle it.
  prepareBesideRun();
  const widest = Math.max(...batches);
  if (widest > 1) await runBatch(model, prompts.slice(0, widest), 4, precision);
  for (let i = 0; i < WARM_UP_GENERATIONS; i++) await runOne(model, prompts[0], WARM_UP_TOKENS, precision);
  const runs: GenerationRun[] = [];
  for (const b of batches) {
    runs.push(await (b === 1 ? besideRun(() => runOne(model, prompts[0], newTokens, precision)) : runBatch(model, prompts.slice(0, b), newTokens, precision)));
  }
  return runs;
}
