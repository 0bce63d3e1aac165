/**
 * Evaluation shared by ranks that gather the model layer by layer (ZeRO-3), run layer-major: the
 * test set goes in passes; in a pass every rank takes its consecutive share of the pass's samples
 * as chunks, and the model runs stage by stage over all the chunks, so each layer group is gathered
 * once per pass instead of once per batch (a 4-layer GPT-2 gathered the whole model for every
 * sample of every rank: 181 s against 31 s).
 *
 * Memory stays bounded by the byte budget, per rank: one stage of one chunk runs at a time in a
 * recycled run (its buffers free again for the next), and between stages only the chunks' stage
 * outputs are kept (GPT-2's hidden states, 1/V of its logits). A one-chunk probe pass of one sample
 * measures both; half the budget sizes the chunks (never more than a training micro-batch's
 * forward holds), the other half the number of chunks per pass (passShape).
 * Every rank runs the same passes (the ranks' smallest sizes); the sums are added over the ranks.
 */
import { BatchLoader } from '../../data/loader.js';
import type { Dataset } from '../../data/dataset.js';
import type { Module } from '../../nn/module.js';
import { copyInto, copyTo } from '../../tensor/boundary/storage_copy.js';
import { BufferRecycler } from '../../tensor/recycler.js';
import type { Storage } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';
import { type EvalShare, type EvalSums, addedOver, evalBatchSize, scoreOutput } from './evaluate.js';
import { microBatches } from './micro_batches.js';
import type { AnyBatch } from './objective.js';

/** What a layer-major forward calls for its chunks' work. */
export interface LayeredRun {
  /** Runs one stage of one chunk in a fresh recycled run (the previous piece's buffers are free again). */
  piece<T>(fn: () => T): T;
  /** Chunk k's piece output copied out of the recycled run, to outlive the next piece (a stage's output; valid until chunk k's next keep but one). */
  keep(k: number, output: Tensor): Tensor;
  /** Scores chunk k's output (its last stage's piece, just run) into the sums. */
  score(k: number, output: Tensor): Promise<void>;
}

/**
 * A pass's forward: every stage over every chunk (a rank with no chunks still takes part in the
 * stages' collectives), each chunk's output scored with `run.score` right after its last piece.
 */
export type LayeredForward = (chunks: readonly AnyBatch[], run: LayeredRun) => Promise<void>;

/** What a rank's evaluation may hold. */
export interface LayeredBudget {
  /** The byte budget (one process's split over the ranks). */
  bytes: number;
  /** The training's micro-batch on this rank, when a step has run: the evaluation holds no more than its forward. */
  trainingSamples?: number;
}

/** What the probe measured for one sample: its largest piece's run, its largest kept stage output, its pieces (stages). */
export interface SampleCost {
  run: number;
  kept: number;
  stages: number;
}

/**
 * Chunk size and chunks per pass. A chunk's run takes at most half the budget, and never more than
 * a training micro-batch of `trainingSamples` holds in its forward alone (its largest stage's run
 * and every other stage's output, which training keeps for backward; HF's per-device evaluation
 * batch is likewise the training's size): evaluating a batch costs no more than training on it.
 * The kept outputs of a pass (two sets: a stage reads one while it writes the other) take the
 * other half, so a pass holds many small chunks and its gathers serve them all.
 */
export function passShape(budget: LayeredBudget, cost: SampleCost, cap: number): { chunk: number; chunks: number } {
  const half = budget.bytes / 2;
  const training = budget.trainingSamples === undefined ? Infinity : budget.trainingSamples * (cost.run + Math.max(cost.stages - 1, 0) * cost.kept);
  const chunk = Math.max(1, Math.min(cap, Math.floor(Math.min(half, training) / Math.max(cost.run, 1))));
  const chunks = Math.max(1, Math.floor(half / Math.max(2 * chunk * cost.kept, 1)));
  return { chunk, chunks };
}

/** The test set's sums over every rank of `share`, layer-major (see the file's header). */
export async function layeredEvaluationLoop(
  model: Module, data: Dataset, batchSize: number, forward: LayeredForward, share: EvalShare, budget: LayeredBudget,
): Promise<EvalSums> {
  const wasTraining = model.training;
  model.eval();
  const sums: EvalSums = { loss: 0, weight: 0, correct: 0 };
  const recycler = new BufferRecycler();
  const measured = { run: 0, kept: 0, pieces: 0 };
  const kept = new KeptOutputs();
  const run: LayeredRun = {
    piece: (fn) => {
      const out = recycler.run(fn);
      measured.pieces++;
      measured.run = Math.max(measured.run, recycler.bytesTaken);
      return out;
    },
    keep: (k, output) => {
      if (output.dtype !== 'float32') throw new Error(`layered evaluation: a stage's output is ${output.dtype}; it keeps float32 outputs between stages`);
      measured.kept = Math.max(measured.kept, output.storage.byteLength);
      return new Tensor(kept.into(k, output.storage as Storage<Float32Array>), output.shape);
    },
    score: async (k, output) => {
      await recycler.resume(() => scoreOutput(data, output, chunks[k], sums));
      measured.run = Math.max(measured.run, recycler.bytesTaken);
    },
  };
  let chunks: AnyBatch[] = [];
  let next = 0;
  const pass = async (loader: BatchLoader<Dataset>, chunk: number, count: number): Promise<number> => {
    const size = Math.min(chunk * count * share.count, data.size - next);
    const each = Math.ceil(size / share.count);
    const [from, to] = [next + Math.min(size, share.rank * each), next + Math.min(size, (share.rank + 1) * each)];
    next += size;
    const mine = to > from ? (loader.batchOf(Int32Array.from({ length: to - from }, (_, i) => from + i)) as AnyBatch) : null;
    chunks = mine ? [...microBatches(data, mine, chunk)] : [];
    await forward(chunks, run);
    return to - from;
  };
  try {
    const cap = evalBatchSize(data, batchSize);
    let shape = { chunk: cap, chunks: 1 };
    if (data.size > 0) {
      const probed = await pass(new BatchLoader<Dataset>(data, new Int32Array(0), 1), 1, 1);
      const fits = probed > 0 ? passShape(budget, { run: measured.run, kept: measured.kept, stages: measured.pieces }, cap) : { chunk: cap, chunks: cap };
      const all = await share.allGather(Float32Array.of(fits.chunk, fits.chunks));
      const everyRank = (i: number): number => Math.min(...Array.from({ length: share.count }, (_, r) => all[2 * r + i]));
      const chunk = everyRank(0);
      // No pass larger than a rank's share of the whole set (the loader's buffers are that size).
      shape = { chunk, chunks: Math.max(1, Math.min(everyRank(1), Math.ceil(Math.ceil(data.size / share.count) / chunk))) };
    }
    const loader = new BatchLoader<Dataset>(data, new Int32Array(0), shape.chunk * shape.chunks);
    while (next < data.size) await pass(loader, shape.chunk, shape.chunks);
  } finally {
    model.train(wasTraining);
  }
  return addedOver(share, sums);
}

/**
 * Two buffers per chunk that stage outputs are copied into by turns: stage s reads one while it
 * writes the other, so a pass reuses them from stage to stage (and pass to pass) instead of making
 * garbage of every stage's outputs.
 */
class KeptOutputs {
  private slots = new Map<number, { buffers: (Storage<Float32Array> | null)[]; turn: number }>();

  into(k: number, from: Storage<Float32Array>): Storage<Float32Array> {
    let slot = this.slots.get(k);
    if (!slot) this.slots.set(k, (slot = { buffers: [null, null], turn: 0 }));
    const i = slot.turn++ & 1;
    const mine = slot.buffers[i];
    if (mine && mine.size === from.size && mine.device === from.device) {
      copyInto(mine, from);
      return mine;
    }
    return (slot.buffers[i] = copyTo(from, from.device));
  }
}
