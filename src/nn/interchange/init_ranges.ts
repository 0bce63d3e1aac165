/**
 * --init for a model that keeps only ranges of its parameters (a ZeRO shard): the values of any
 * range of any parameter, from a safetensors file (read by ranges: safetensors_ranges.ts) or from
 * smolcluster's own model file (read whole once, then cut), names and shapes checked first.
 */
import { CheckpointError, readModelHeader } from '../checkpoint.js';
import type { ModelSpec } from '../models/index.js';
import type { Module } from '../module.js';
import { isFolder } from './hf_weights.js';
import { isSafetensorsPath } from './safetensors.js';
import { SafetensorsRanges } from './safetensors_ranges.js';

export interface InitRanges {
  /** Elements [from, to) of parameter `name` (of `shape`), as our layout orders them. */
  read(name: string, shape: readonly number[], from: number, to: number): Float32Array;
  /** The model's buffers, whole. */
  loadBuffers(model: Module): void;
  close(): void;
}

/** Opens `file` (a Hugging Face folder, or a file by its extension) for ranged reads into `model`, refusing a file that does not hold its parameters and buffers. */
export function openInitRanges(file: string, model: Module, spec: ModelSpec): InitRanges {
  return isSafetensorsPath(file) || isFolder(file) ? new SafetensorsRanges(file, model, spec) : modelFileRanges(file, model, spec);
}

/** Our own model file (or a checkpoint): its floats in our layout, each tensor at its record's offset. */
function modelFileRanges(file: string, model: Module, spec: ModelSpec): InitRanges {
  const { header, data, dataStart } = readModelHeader(file);
  if (JSON.stringify(header.architecture) !== JSON.stringify(spec)) {
    throw new CheckpointError(file, `holds architecture ${JSON.stringify(header.architecture)}, but the model is ${JSON.stringify(spec)}`);
  }
  const records = new Map([...header.params, ...header.buffers].map((r) => [r.name, r]));
  const wanted: [string, number[]][] = [
    ...model.namedParameters().map(([n, p]): [string, number[]] => [n, [...p.shape]]),
    ...model.namedBufferStorages().map(([n, b]): [string, number[]] => [n, [b.size]]),
  ];
  for (const [name, shape] of wanted) {
    const r = records.get(name);
    if (!r || r.shape.join('x') !== shape.join('x')) throw new CheckpointError(file, 'parameter names or shapes differ from the model');
    if (dataStart + 4 * (r.offset + shape.reduce((a, d) => a * d, 1)) > data.length) throw new CheckpointError(file, `truncated: ${name} lies past the end`);
  }
  if (records.size !== wanted.length) throw new CheckpointError(file, 'parameter names or shapes differ from the model');
  const floats = (name: string, from: number, to: number): Float32Array => {
    const at = data.byteOffset + dataStart + 4 * (records.get(name)!.offset + from);
    return new Float32Array(data.buffer.slice(at, at + 4 * (to - from)));
  };
  return {
    read: (name, _shape, from, to) => floats(name, from, to),
    loadBuffers: (m) => {
      for (const [name, b] of m.namedBufferStorages()) b.write(floats(name, 0, b.size));
    },
    close: () => {},
  };
}
