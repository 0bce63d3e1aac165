/** Public API of the data layer: datasets, the sharded sampler and the batch loader. */
export { DataError } from './errors.js';
export type { Dataset, DatasetBase, ClassificationDataset, RegressionDataset, TokenDataset, TokenTask } from './dataset.js';
export { IGNORE_INDEX, isTokenTask, shapeSize, sampleSize, targetSize } from './dataset.js';
export { readIdxFile, parseIdx, type IdxArray, type IdxKind } from './idx.js';
export { loadMnist, defaultMnistDir, MNIST_MEAN, MNIST_STD, type Mnist, type MnistOptions } from './mnist.js';
export { DistributedSampler, type DistributedSamplerOptions, type IndexSource } from './sampler.js';
export { ShareSampler, type ShareSamplerOptions, splitCounts } from './share_sampler.js';
export {
  BatchLoader,
  type BatchLoaderOptions,
  type BatchOf,
  type ClassificationBatch,
  type RegressionBatch,
  type TokenBatch,
} from './loader.js';
export {
  syntheticRegression,
  syntheticClassification,
  type SyntheticRegressionOptions,
  type SyntheticClassificationOptions,
} from './synthetic.js';
