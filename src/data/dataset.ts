/**
 * In-memory datasets: every sample's input lives in one contiguous Float32Array (sample i occupies
 * [i·S, (i+1)·S) with S = product(inputShape)), so batch gathering is a handful of memcpy-like
 * `set` calls and the whole set can be handed to a backend or shared between threads as-is.
 *
 * The task decides the target type: class indices (Int32Array) or real-valued targets
 * (Float32Array, laid out like the inputs). `task` discriminates the two.
 */
export interface DatasetBase {
  readonly name: string;
  /** Number of samples. */
  readonly size: number;
  /** Shape of one sample's input, e.g. [1, 28, 28] for MNIST. */
  readonly inputShape: readonly number[];
  /** size × product(inputShape) values, sample-major. */
  readonly inputs: Float32Array;
}

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

export type Dataset = ClassificationDataset | RegressionDataset;

/** Number of elements in a tensor of this shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Number of input values per sample. */
export function sampleSize(dataset: DatasetBase): number {
  return shapeSize(dataset.inputShape);
}

/** Number of target values per sample: 1 for a class label. */
export function targetSize(dataset: Dataset): number {
  return dataset.task === 'classification' ? 1 : shapeSize(dataset.targetShape);
}
