/**
 * Small deterministic datasets generated from a seed, for tests and the validation suite.
 *
 * Each ingredient (teacher weights, class means, inputs, noise, labels) comes from its own derived
 * Rng stream, so the teacher and the class means do not depend on the sample count (and a
 * regression sample i is the same whatever `samples` is).
 */
import { Rng } from '../util/rng.js';
import { shapeSize, type ClassificationDataset, type RegressionDataset } from './dataset.js';

const STREAM = { teacher: 1, inputs: 2, noise: 3, labels: 4, means: 5 } as const;

export interface SyntheticRegressionOptions {
  seed: number;
  samples: number;
  inputDim: number;
  outputDim: number;
  /** Standard deviation of Gaussian noise added to the targets. */
  noise: number;
}

/**
 * x ~ N(0, I); y = x·A + tanh(x·C) + noise·ε, with A, C ~ N(0, 1/inputDim) fixed by the seed:
 * a mostly linear teacher with a smooth nonlinearity, so models of any size have something to fit.
 */
export function syntheticRegression(options: SyntheticRegressionOptions): RegressionDataset {
  const { seed, samples, inputDim, outputDim, noise } = options;
  checkPositive({ samples, inputDim, outputDim });
  const teacher = Rng.derive(seed, STREAM.teacher);
  const a = normals(teacher, inputDim * outputDim, 1 / Math.sqrt(inputDim));
  const c = normals(teacher, inputDim * outputDim, 1 / Math.sqrt(inputDim));
  const inputs = normals(Rng.derive(seed, STREAM.inputs), samples * inputDim, 1);
  const eps = Rng.derive(seed, STREAM.noise);
  const targets = new Float32Array(samples * outputDim);
  for (let i = 0; i < samples; i++) {
    for (let o = 0; o < outputDim; o++) {
      let lin = 0;
      let pre = 0;
      for (let k = 0; k < inputDim; k++) {
        const x = inputs[i * inputDim + k];
        lin += x * a[k * outputDim + o];
        pre += x * c[k * outputDim + o];
      }
      targets[i * outputDim + o] = lin + Math.tanh(pre) + noise * eps.normal();
    }
  }
  return {
    task: 'regression',
    name: `synthetic-regression-${seed}`,
    size: samples,
    inputShape: [inputDim],
    inputs,
    targetShape: [outputDim],
    targets,
  };
}

export interface SyntheticClassificationOptions {
  seed: number;
  samples: number;
  inputShape: readonly number[];
  numClasses: number;
  /** Standard deviation of each class's Gaussian cloud around its mean (default 1). */
  noise?: number;
}

/**
 * Gaussian clouds: class c has a mean μ_c ~ N(0, I); a sample is μ_label + noise·ε. Labels are
 * balanced (each class within one of samples/numClasses) and in seeded random order.
 */
export function syntheticClassification(options: SyntheticClassificationOptions): ClassificationDataset {
  const { seed, samples, inputShape, numClasses } = options;
  const noise = options.noise ?? 1;
  const dim = shapeSize(inputShape);
  checkPositive({ samples, numClasses, 'input size': dim });
  const means = normals(Rng.derive(seed, STREAM.means), numClasses * dim, 1);
  const labels = new Int32Array(samples);
  for (let i = 0; i < samples; i++) labels[i] = i % numClasses;
  Rng.derive(seed, STREAM.labels).shuffle(labels);
  const inputs = normals(Rng.derive(seed, STREAM.inputs), samples * dim, noise);
  for (let i = 0; i < samples; i++) {
    const mean = means.subarray(labels[i] * dim, (labels[i] + 1) * dim);
    for (let k = 0; k < dim; k++) inputs[i * dim + k] += mean[k];
  }
  return {
    task: 'classification',
    name: `synthetic-classification-${seed}`,
    size: samples,
    inputShape: [...inputShape],
    numClasses,
    inputs,
    labels,
  };
}

function normals(rng: Rng, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

function checkPositive(values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`synthetic dataset: ${name} must be a positive integer, got ${v}`);
  }
}
