/**
 * CIFAR-10 from its standard binary files ("CIFAR-10 binary version", cifar-10-binary.tar.gz):
 * data_batch_1.bin … data_batch_5.bin (training, 10 000 records each) and test_batch.bin. A record
 * is 3073 bytes: the label (0–9), then 1024 red, 1024 green and 1024 blue pixels, rows top to
 * bottom — already the [3, 32, 32] layout our convolutions take.
 *
 * Pixels are normalised per channel with the usual CIFAR-10 statistics (mean and standard deviation
 * of the training set), like torchvision's ToTensor then Normalize(CIFAR10_MEAN, CIFAR10_STD), in
 * float32 steps. The files cannot be downloaded here, so nothing is fetched: a missing directory or
 * file is an error that says where to get them.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomCropFlip } from './augment.js';
import type { ClassificationDataset } from './dataset.js';
import { DataError } from './errors.js';

export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465] as const;
export const CIFAR10_STD = [0.2470, 0.2435, 0.2616] as const;
export const CIFAR10_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
/** Where --data-dir points when not given: the folder the archive unpacks to, under ./data. */
export const CIFAR10_DEFAULT_DIR = join('data', 'cifar-10-batches-bin');

const RECORD = 3073;
const PLANE = 1024;
const CLASSES = 10;

export interface Cifar10Options {
  dataDir?: string;
  /** Random crop (pad 4) and horizontal flip of training samples, fresh each epoch from `seed`. */
  augment?: boolean;
  seed?: number;
}

export function loadCifar10(options: Cifar10Options = {}): { train: ClassificationDataset; test: ClassificationDataset } {
  const dir = resolveDir(options.dataDir ?? CIFAR10_DEFAULT_DIR);
  const train = readRecords('cifar10-train', CIFAR10_TRAIN_FILES.map((f) => join(dir, f)));
  const test = readRecords('cifar10-test', [join(dir, CIFAR10_TEST_FILE)]);
  if (!options.augment) return { train, test };
  const pad = CIFAR10_MEAN.map((m, c) => -m / CIFAR10_STD[c]);
  return { train: { ...train, augment: randomCropFlip({ seed: options.seed ?? 0, size: 32, channels: 3, padding: 4, padValue: pad }) }, test };
}

/** The directory itself, or the cifar-10-batches-bin folder inside it (where the archive was unpacked). */
function resolveDir(dir: string): string {
  if (existsSync(join(dir, CIFAR10_TEST_FILE))) return dir;
  const inner = join(dir, 'cifar-10-batches-bin');
  if (existsSync(join(inner, CIFAR10_TEST_FILE))) return inner;
  const expected = `${CIFAR10_TRAIN_FILES.join(', ')} and ${CIFAR10_TEST_FILE}`;
  const what = existsSync(dir) ? 'has no CIFAR-10 binary files' : 'does not exist';
  throw new DataError(dir, `${what}: --data-dir must hold ${expected} (the "CIFAR-10 binary version", ${CIFAR10_URL}, unpacked: tar xzf cifar-10-binary.tar.gz)`);
}

function readRecords(name: string, files: string[]): ClassificationDataset {
  const parts = files.map((file) => {
    if (!existsSync(file)) throw new DataError(file, `CIFAR-10 file missing (expected ${CIFAR10_TRAIN_FILES.join(', ')}, ${CIFAR10_TEST_FILE}; from ${CIFAR10_URL})`);
    const size = statSync(file).size;
    if (size === 0 || size % RECORD !== 0) {
      throw new DataError(file, `truncated or not a CIFAR-10 binary batch: ${size} bytes is not a whole number of ${RECORD}-byte records (re-extract it from ${CIFAR10_URL})`);
    }
    return { file, bytes: readFileSync(file) };
  });
  const count = parts.reduce((n, p) => n + p.bytes.length / RECORD, 0);
  const inputs = new Float32Array(count * 3 * PLANE);
  const labels = new Int32Array(count);
  const table = channelTables();
  let i = 0;
  for (const { file, bytes } of parts) {
    for (let r = 0; r < bytes.length; r += RECORD, i++) {
      const label = bytes[r];
      if (label >= CLASSES) throw new DataError(file, `record ${r / RECORD} has label ${label}, outside 0..${CLASSES - 1}`);
      labels[i] = label;
      const out = inputs.subarray(i * 3 * PLANE, (i + 1) * 3 * PLANE);
      for (let k = 0; k < 3 * PLANE; k++) out[k] = table[(k >> 10) * 256 + bytes[r + 1 + k]];
    }
  }
  return { task: 'classification', name, size: count, inputShape: [3, 32, 32], numClasses: CLASSES, inputs, labels };
}

/** The 256 normalised values of each channel, computed once in float32 steps (as torchvision does). */
function channelTables(): Float32Array {
  const t = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(CIFAR10_MEAN[c]);
    const std = Math.fround(CIFAR10_STD[c]);
    for (let v = 0; v < 256; v++) t[c * 256 + v] = Math.fround(Math.fround(v / 255) - mean) / std;
  }
  return t;
}
