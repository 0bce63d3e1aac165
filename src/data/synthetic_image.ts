/**
 * synthetic_image: a learnable stand-in for CIFAR-10. Each class has a fixed template image (a few
 * coloured Gaussian blobs and one oriented grating per channel, drawn from the seed); a sample is its
 * class's template, circularly shifted by up to `maxShift` pixels in each direction, scaled by a
 * random contrast in [0.75, 1.25], plus Gaussian pixel noise. A model must be (somewhat) shift
 * invariant and average out the noise, so accuracy rises over training rather than at once, and a
 * chance-level model scores 1/classes.
 *
 * Sample i of a split comes from its own Rng stream, so it does not depend on how many samples are
 * drawn, and the test split is independent of the training split but shares the templates.
 */
import { withDefaults } from '../util/defaults.js';
import { Rng } from '../util/rng.js';
import type { ClassificationDataset } from './dataset.js';

export interface SyntheticImageOptions {
  seed: number;
  samples: number;
  /** 'train' and 'test' draw different samples of the same classes. */
  split: 'train' | 'test';
  channels?: number;
  size?: number;
  numClasses?: number;
  /** Standard deviation of the pixel noise; the templates have unit standard deviation. */
  noise?: number;
  maxShift?: number;
}

export const SYNTHETIC_IMAGE_DEFAULTS = { channels: 3, size: 32, numClasses: 10, noise: 2, maxShift: 8 } as const;

const STREAM = { templates: 11, train: 12, test: 13 } as const;

export function syntheticImage(options: SyntheticImageOptions): ClassificationDataset {
  const o = withDefaults(SYNTHETIC_IMAGE_DEFAULTS, options);
  for (const [name, v] of Object.entries({ samples: o.samples, channels: o.channels, size: o.size, numClasses: o.numClasses })) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`synthetic_image: ${name} must be a positive integer, got ${v}`);
  }
  const plane = o.size * o.size;
  const dim = o.channels * plane;
  const templates = classTemplates(o.seed, o.numClasses, o.channels, o.size);
  const inputs = new Float32Array(o.samples * dim);
  const labels = new Int32Array(o.samples);
  for (let i = 0; i < o.samples; i++) {
    const rng = Rng.derive(o.seed, STREAM[o.split], i);
    const label = i % o.numClasses;
    labels[i] = label;
    const dy = rng.int(2 * o.maxShift + 1) - o.maxShift;
    const dx = rng.int(2 * o.maxShift + 1) - o.maxShift;
    const contrast = 0.75 + 0.5 * rng.uniform();
    const t = templates.subarray(label * dim, (label + 1) * dim);
    const out = inputs.subarray(i * dim, (i + 1) * dim);
    for (let c = 0; c < o.channels; c++) {
      for (let y = 0; y < o.size; y++) {
        const sy = (y - dy + o.size) % o.size;
        for (let x = 0; x < o.size; x++) {
          const sx = (x - dx + o.size) % o.size;
          out[c * plane + y * o.size + x] = contrast * t[c * plane + sy * o.size + sx] + o.noise * rng.normal();
        }
      }
    }
  }
  return {
    task: 'classification',
    name: `synthetic_image-${o.seed}-${o.split}`,
    size: o.samples,
    inputShape: [o.channels, o.size, o.size],
    numClasses: o.numClasses,
    inputs,
    labels,
  };
}

/** numClasses images [C, size, size], each channel normalised to mean 0 and standard deviation 1. */
function classTemplates(seed: number, numClasses: number, channels: number, size: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(numClasses * channels * plane);
  const rng = Rng.derive(seed, STREAM.templates);
  for (let k = 0; k < numClasses; k++) {
    for (let c = 0; c < channels; c++) {
      const img = out.subarray((k * channels + c) * plane, (k * channels + c + 1) * plane);
      const blobs = Array.from({ length: 3 }, () => ({
        y: rng.uniform() * size, x: rng.uniform() * size, r: size * (0.08 + 0.15 * rng.uniform()), a: rng.normal(),
      }));
      const angle = rng.uniform() * Math.PI;
      const freq = (2 * Math.PI * (1 + rng.int(3))) / size;
      const phase = rng.uniform() * 2 * Math.PI;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          let v = 0.5 * Math.sin(freq * (x * Math.cos(angle) + y * Math.sin(angle)) + phase);
          for (const b of blobs) v += b.a * Math.exp(-((y - b.y) ** 2 + (x - b.x) ** 2) / (2 * b.r * b.r));
          img[y * size + x] = v;
        }
      }
      standardise(img);
    }
  }
  return out;
}

function standardise(a: Float32Array): void {
  let mean = 0;
  for (const v of a) mean += v;
  mean /= a.length;
  let varSum = 0;
  for (const v of a) varSum += (v - mean) ** 2;
  const std = Math.sqrt(varSum / a.length) || 1;
  for (let i = 0; i < a.length; i++) a[i] = (a[i] - mean) / std;
}
