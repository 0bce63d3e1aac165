/**
 * In-memory datasets: every sample's input lives in one contiguous Float32Array (sample i occupies
 * [i·S, (i+1)·S) with S = product(inputShape)), so batch gathering is a handful of memcpy-like
 * `set` calls and the whole set can be handed to a backend or shared between threads as-is.
 *
 * The task decides the target type: class indices (Int32Array), real-valued targets (Float32Array,
 * laid out like the inputs), or one target token per input position for the token tasks.
 * `task` discriminates them.
 */
import { IGNORE_LABEL } from '../tensor/ops/loss.js';

export interface DatasetBase<I extends Float32Array | Int32Array = Float32Array> {
  readonly name: string;
  /** Number of samples. */
  readonly size: number;
  /** Shape of one sample's input, e.g. [1, 28, 28] for MNIST. */
  readonly inputShape: readonly number[];
  /** size × product(inputShape) values, sample-major (token ids: int32). */
  readonly inputs: I;
  /** Training-time augmentation the loader applies to each gathered sample (augment.ts). */
  readonly augment?: SampleTransform;
}

/** Changes one gathered sample's input in place; must depend only on (index, epoch) and its seed. */
export type SampleTransform = (input: Float32Array, index: number, epoch: number) => void;

export interface ClassificationDataset extends DatasetBase {
  readonly task: 'classification';
  readonly numClasses: number;
  /** One class index in [0, numClasses) per sample. */
  readonly labels: Int32Array;
}

export interface RegressionDataset extends DatasetBase {
  readonly task: 'regression';
  /** Shape of one sample's target, e.g. [outputDim]. */
  readonly targetShape: readonly number[];
  /** size × product(targetShape) values, sample-major. */
  readonly targets: Float32Array;
}

/** Label of a position that takes no part in the loss or the accuracy (PyTorch's ignore_index, -100). */
export const IGNORE_INDEX = IGNORE_LABEL;

export type TokenTask = 'language-model' | 'masked-lm';

/**
 * Sequences of token ids. `inputShape` is [contextLength]; `inputs` holds the ids as int32, so they
 * reach the embedding as an int32 tensor with no conversion on the way. `labels` has one target
 * id per position (size × contextLength), IGNORE_INDEX where a position is not scored:
 *   - language-model: the label at position t is the input token at t + 1 (the next token);
 *   - masked-lm: the original token at the masked positions, IGNORE_INDEX elsewhere; the masked
 *     positions' inputs hold `maskToken` (or a random/the same token, BERT's 80/10/10 rule).
 * A model for a token task returns logits [N, contextLength, vocabSize].
 */
export interface TokenDataset extends DatasetBase<Int32Array> {
  readonly task: TokenTask;
  readonly vocabSize: number;
  readonly inputShape: readonly [number];
  readonly labels: Int32Array;
  /** masked-lm: the id that replaces masked tokens (below vocabSize). */
  readonly maskToken?: number;
  /**
   * Packed windows (chat_packing.ts): each token's position in its own sequence, size × contextLength,
   * 0 where a sequence begins (TRL's position_ids). Absent: every window is one sequence.
   */
  readonly positions?: Int32Array;
}

/** Reads one window of a corpus kept on disk (text_windows.ts) into the caller's arrays. */
export interface WindowReader {
  /** Fills `inputs` and `labels` (contextLength ids each) with window `index`. */
  read(index: number, inputs: Int32Array, labels: Int32Array): void;
}

/**
 * A token dataset whose windows are read on demand (a packed text corpus in a token file, which
 * may be larger than memory) instead of held in arrays; otherwise like a TokenDataset.
 */
export interface StreamedTokenDataset {
  readonly task: TokenTask;
  readonly name: string;
  readonly size: number;
  readonly inputShape: readonly [number];
  readonly vocabSize: number;
  readonly maskToken?: number;
  readonly windows: WindowReader;
}

export type Dataset = ClassificationDataset | RegressionDataset | TokenDataset | StreamedTokenDataset;

/** True for a dataset whose samples are read on demand (no `inputs` array). */
export function isStreamed(dataset: Dataset): dataset is StreamedTokenDataset {
  return 'windows' in dataset;
}

/** True for the token tasks (language-model, masked-lm). */
export function isTokenTask(dataset: Dataset): dataset is TokenDataset | StreamedTokenDataset {
  return dataset.task === 'language-model' || dataset.task === 'masked-lm';
}

/** Number of elements in a tensor of this shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Number of input values per sample. */
export function sampleSize(dataset: Pick<DatasetBase, 'inputShape'>): number {
  return shapeSize(dataset.inputShape);
}

/** Number of target values per sample: 1 for a class label, contextLength for a token task. */
export function targetSize(dataset: Dataset): number {
  if (dataset.task === 'classification') return 1;
  if (dataset.task === 'regression') return shapeSize(dataset.targetShape);
  return dataset.inputShape[0];
}
