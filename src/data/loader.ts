/**
 * Batches of samples gathered into contiguous buffers, in the order an index source gives.
 *
 * Two preallocated buffer sets are used in turn (double buffering), so iterating allocates nothing
 * per sample and a consumer may keep working on one batch while the next is gathered. A yielded
 * batch is valid until the next-but-one batch is produced: batch k's arrays are overwritten when
 * batch k+2 is gathered. Copy what must live longer.
 *
 * Batch b holds positions [b·batchSize, (b+1)·batchSize) of the epoch's indices; see sampler.ts for
 * how this makes N ranks' batches add up to the single-process global batch.
 */
import { isStreamed, sampleSize, targetSize, type Dataset, type RegressionDataset, type StreamedTokenDataset, type TokenDataset } from './dataset.js';
import type { IndexSource } from './sampler.js';

interface BatchBase<I extends Float32Array | Int32Array = Float32Array> {
  /** Number of samples in this batch (≤ batchSize; smaller only for the last batch). */
  readonly size: number;
  /** The dataset indices of the samples, in batch order. */
  readonly indices: Int32Array;
  /** size × sampleSize values, sample-major (token ids: int32, like their dataset's). */
  readonly inputs: I;
}

export interface ClassificationBatch extends BatchBase {
  readonly labels: Int32Array;
}

export interface RegressionBatch extends BatchBase {
  /** size × targetSize values, sample-major. */
  readonly targets: Float32Array;
}

/**
 * A token task's batch: `labels` holds size × contextLength target ids (IGNORE_INDEX: not scored);
 * `positions` each token's position in its packed sequence, when the dataset packs (TokenDataset.positions).
 */
export interface TokenBatch extends BatchBase<Int32Array> {
  readonly labels: Int32Array;
  readonly positions?: Int32Array;
}

export type BatchOf<D extends Dataset> = D extends RegressionDataset ? RegressionBatch
  : D extends TokenDataset | StreamedTokenDataset ? TokenBatch : ClassificationBatch;

export interface BatchLoaderOptions {
  /** Skip the last batch when it is smaller than batchSize. */
  dropLast?: boolean;
}

interface Buffers {
  indices: Int32Array;
  inputs: Float32Array | Int32Array;
  labels: Int32Array;
  targets: Float32Array;
  positions: Int32Array | null;
}

export class BatchLoader<D extends Dataset = Dataset> {
  readonly batchSize: number;
  readonly dropLast: boolean;
  /** Batches per epoch. */
  readonly numBatches: number;
  private readonly source: IndexSource;
  private readonly sampleSize: number;
  private readonly targetSize: number;
  private readonly buffers: [Buffers, Buffers];
  private turn = 0;

  constructor(
    readonly dataset: D,
    source: IndexSource | Int32Array,
    batchSize: number,
    options: BatchLoaderOptions = {},
  ) {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`BatchLoader: batchSize must be a positive integer, got ${batchSize}`);
    }
    this.source = source instanceof Int32Array ? fixedSource(source) : source;
    this.batchSize = batchSize;
    this.dropLast = options.dropLast ?? false;
    const n = this.source.length;
    this.numBatches = this.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
    this.sampleSize = sampleSize(dataset);
    this.targetSize = targetSize(dataset);
    this.buffers = [this.allocate(), this.allocate()];
  }

  /** Batches of `epoch`, starting at batch `from` (to resume mid-epoch). */
  *batches(epoch = 0, from = 0): Generator<BatchOf<D>, void, undefined> {
    const order = this.source.indices(epoch);
    if (order.length !== this.source.length) {
      throw new RangeError(`BatchLoader: index source gave ${order.length} indices for epoch ${epoch}, declared ${this.source.length}`);
    }
    checkIndices(order, this.dataset);
    for (let b = from; b < this.numBatches; b++) {
      const start = b * this.batchSize;
      const end = Math.min(start + this.batchSize, order.length);
      yield this.gather(order.subarray(start, end), this.buffers[b & 1], epoch);
    }
  }

  /**
   * A batch of exactly these dataset indices (at most batchSize; e.g. a share of a global batch),
   * gathered into the buffer set after the one used last, like batches().
   */
  batchOf(indices: Int32Array, epoch = 0): BatchOf<D> {
    if (indices.length > this.batchSize) throw new RangeError(`BatchLoader: ${indices.length} indices exceed batchSize ${this.batchSize}`);
    checkIndices(indices, this.dataset);
    return this.gather(indices, this.buffers[this.turn++ & 1], epoch);
  }

  [Symbol.iterator](): Generator<BatchOf<D>, void, undefined> {
    return this.batches(0);
  }

  private allocate(): Buffers {
    const b = this.batchSize;
    const regression = this.dataset.task === 'regression';
    return {
      indices: new Int32Array(b),
      inputs: isStreamed(this.dataset) || this.dataset.inputs instanceof Int32Array ? new Int32Array(b * this.sampleSize) : new Float32Array(b * this.sampleSize),
      labels: new Int32Array(regression ? 0 : b * this.targetSize),
      targets: new Float32Array(regression ? b * this.targetSize : 0),
      positions: 'positions' in this.dataset && this.dataset.positions ? new Int32Array(b * this.sampleSize) : null,
    };
  }

  private gather(picked: Int32Array, buf: Buffers, epoch: number): BatchOf<D> {
    const n = picked.length;
    const indices = buf.indices.subarray(0, n);
    indices.set(picked);
    if (isStreamed(this.dataset)) return readWindows(this.dataset, picked, buf) as BatchOf<D>;
    const inputs = gatherRows<Float32Array | Int32Array>(this.dataset.inputs, this.sampleSize, picked, buf.inputs);
    const augment = this.dataset.augment;
    // Augmentations transform images (float inputs); token datasets have none.
    if (augment) for (let j = 0; j < n; j++) augment(inputs.subarray(j * this.sampleSize, (j + 1) * this.sampleSize) as Float32Array, picked[j], epoch);
    if (this.dataset.task === 'regression') {
      const targets = gatherRows(this.dataset.targets, this.targetSize, picked, buf.targets);
      return { size: n, indices, inputs, targets } as RegressionBatch as BatchOf<D>;
    }
    const labels = gatherRows(this.dataset.labels, this.targetSize, picked, buf.labels);
    if ('positions' in this.dataset && this.dataset.positions && buf.positions) {
      const positions = gatherRows(this.dataset.positions, this.sampleSize, picked, buf.positions);
      return { size: n, indices, inputs: inputs as Int32Array, labels, positions } as TokenBatch as BatchOf<D>;
    }
    return { size: n, indices, inputs, labels } as ClassificationBatch as BatchOf<D>;
  }
}

/** A streamed dataset's windows `picked`, read one by one into the front of the buffers. */
function readWindows(dataset: StreamedTokenDataset, picked: Int32Array, buf: Buffers): TokenBatch {
  const T = dataset.inputShape[0];
  const n = picked.length;
  const inputs = (buf.inputs as Int32Array).subarray(0, n * T);
  const labels = buf.labels.subarray(0, n * T);
  for (let j = 0; j < n; j++) dataset.windows.read(picked[j], inputs.subarray(j * T, (j + 1) * T), labels.subarray(j * T, (j + 1) * T));
  return { size: n, indices: buf.indices.subarray(0, n), inputs, labels };
}

/** Copies rows `picked` of a row-major matrix with `width` columns into the front of `out`. */
function gatherRows<A extends Float32Array | Int32Array>(src: A, width: number, picked: Int32Array, out: A): A {
  if (width === 1) {
    for (let j = 0; j < picked.length; j++) out[j] = src[picked[j]];
    return out.subarray(0, picked.length) as A;
  }
  for (let j = 0; j < picked.length; j++) {
    const from = picked[j] * width;
    out.set(src.subarray(from, from + width), j * width);
  }
  return out.subarray(0, picked.length * width) as A;
}

function fixedSource(indices: Int32Array): IndexSource {
  return { length: indices.length, indices: () => indices };
}

/** An out-of-range index would silently read zeros or another sample's tail; refuse it up front. */
function checkIndices(order: Int32Array, dataset: Dataset): void {
  for (let i = 0; i < order.length; i++) {
    if (order[i] < 0 || order[i] >= dataset.size) {
      throw new RangeError(`BatchLoader: index ${order[i]} at position ${i} is outside dataset ${dataset.name} (size ${dataset.size})`);
    }
  }
}
