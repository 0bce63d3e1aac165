/**
 * Parsers of option values as typed on a command line. Each refuses a bad value with what the
 * option expects (commander prints it after the flag's name: "option '--lr <rate>' argument 'x'
 * is invalid. expected a positive number.").
 */
import { InvalidArgumentError } from 'commander';
import type { ModelType } from '../../nn/models/names.js';
import { MODEL_NAMES } from '../../nn/models/names.js';
import { DATASET_NAMES, type DatasetName, acceptedDatasets, acceptedModels, canonicalDataset, canonicalModel, didYouMean } from '../spellings.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number.');
  return n;
}

/** A probability that may be 0 but never 1 (--dropout). */
export function probability(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('expected a probability, 0 ≤ p < 1.');
  return n;
}

/** A share strictly between 0 and 1 (--val-fraction). */
export function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError('expected a fraction, 0 < f < 1.');
  return n;
}

/** --zero: a ZeRO stage, 1 (optimizer state sharded), 2 (also gradients) or 3 (also parameters). */
export function zeroStage(value: string): 1 | 2 | 3 {
  const n = Number(value);
  if (n !== 1 && n !== 2 && n !== 3) throw new InvalidArgumentError('expected a ZeRO stage: 1, 2 or 3.');
  return n;
}

export function intList(value: string): number[] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.length === 0 || parts.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InvalidArgumentError('expected comma-separated positive integers, e.g. 256,128.');
  }
  return parts;
}

export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}.`);
    return value as T;
  };
}

/** A repeatable option: every occurrence is kept, in order. */
export function appended(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--model`: the guide's and other spellings (ResNet50, SimpleNN, GPT-2) as their canonical name (config/spellings.ts). */
export function modelFlag(value: string): ModelType {
  const name = canonicalModel(value);
  if (name === null) throw new InvalidArgumentError(`unknown model "${value}"${didYouMean(value, MODEL_NAMES)}; accepted: ${acceptedModels()}.`);
  return name as ModelType;
}

/** `--dataset`: MNIST, CIFAR-10, synthetic-image and the like as their canonical name. */
export function datasetFlag(value: string): DatasetName {
  const name = canonicalDataset(value);
  if (name === null) throw new InvalidArgumentError(`unknown dataset "${value}"${didYouMean(value, DATASET_NAMES)}; accepted: ${acceptedDatasets()}.`);
  return name as DatasetName;
}

/**
 * `--backend`: our tensor backends, plus torch.distributed's communication backends as a guide
 * writes them. `gloo` (CPU collectives over TCP) is what our transport is, so it is accepted as
 * another spelling of `--comm-backend auto` (the default); `nccl` needs NVIDIA GPUs, which
 * smolcluster does not train on, and `mpi` a library we do not link: both refused with the reason.
 */
export function backendFlag(value: string): 'js' | 'native' | 'gloo' {
  if (value === 'native' || value === 'js' || value === 'gloo') return value;
  if (value === 'nccl') throw new InvalidArgumentError('nccl needs NVIDIA GPUs and CUDA; smolcluster trains on CPUs over TCP, which is what gloo means here: use --backend gloo (or leave it out).');
  if (value === 'mpi') throw new InvalidArgumentError('mpi collectives are not linked; smolcluster uses its own TCP transport (gloo): use --backend gloo, and mpirun only to start the processes (docs/LAUNCH.md).');
  throw new InvalidArgumentError('expected native or js (tensor backend), or gloo (communication backend).');
}
