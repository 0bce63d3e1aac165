/**
 * A Hugging Face folder whose weight matrices are BF16, loaded for bf16 inference with each matrix
 * held in its own dtype: a bfloat16 parameter bound to the file's bytes (mapped read-only where the
 * host can: no copy in the heap, safetensors_ranges.ts bf16Bits), never a float32 copy beside it.
 * loadPretrained widens every weight to float32 and a bf16 generation then held a bf16 cast and its
 * packed copy beside each (9–11 bytes a parameter measured for the Qwen2.5-0.5B shape, issue 50);
 * here a matrix is its 2 bytes. The vectors (norms, biases) are small and stay float32, as the ops
 * that read them want.
 *
 * The model is built deferred (as a GGUF file's or an MLX folder's): nothing is allocated before
 * each parameter is bound. Its matrices are frozen (a bfloat16 parameter does not train, and a
 * mapped one must never be written): for inference only.
 */
import { closeSync, openSync } from 'node:fs';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { CPU, deviceMemory } from '../../tensor/storage.js';
import { type ModelSpec, createModel } from '../models/index.js';
import type { Module } from '../module.js';
import { specFromFolder } from './hf_folder.js';
import { folderWeights } from './hf_weights.js';
import { readSafetensorsHeader } from './safetensors.js';
import { SafetensorsRanges } from './safetensors_ranges.js';

/** Whether a folder's files hold a matrix in BF16 (from their headers: no weight is read). */
export function folderHasBf16Matrices(dir: string): boolean {
  for (const file of folderWeights(dir).files) {
    const fd = openSync(file, 'r');
    try {
      for (const [, e] of readSafetensorsHeader(file, fd).entries) if (e.dtype === 'BF16' && e.shape.length === 2) return true;
    } finally {
      closeSync(fd);
    }
  }
  return false;
}

/** The folder's model with its BF16 matrices held as bfloat16 (frozen) and every other weight in float32. */
export function loadFolderInBf16(dir: string): { model: Module; spec: ModelSpec } {
  const spec = specFromFolder(dir);
  const model = buildDeferred(() => withoutRandomInit(() => createModel(spec, 0)));
  const ranges = new SafetensorsRanges(dir, model, spec);
  try {
    const bits = new Map(model.namedParameters().map(([name, p]) => [name, p.ndim === 2 ? ranges.bf16Bits(name) : null]));
    model.freeze((name) => bits.get(name) != null);
    for (const [name, p] of model.namedParameters()) {
      const held = bits.get(name);
      if (held) p.holdFrozen(deviceMemory(CPU).fromHost(held));
      else p.bind(deviceMemory(CPU).fromHost(ranges.read(name, p.shape, 0, p.size)), null);
    }
  } finally {
    ranges.close();
  }
  model.eval();
  return { model, spec };
}
