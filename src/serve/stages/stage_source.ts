/**
 * The model a pipeline's processes generate with, from what `--model` names (generate/model_source.ts),
 * without reading its weights: the spec from the folder's config.json, the safetensors header or the
 * model file's header, and where the weights are (each stage reads its own layers' from there).
 */
import { closeSync, openSync } from 'node:fs';
import { type ResolvedSource, resolveModelSource } from '../../generate/model_source.js';
import { CheckpointError, readModelHeader } from '../../nn/checkpoint.js';
import { isGgufFile } from '../../nn/interchange/gguf.js';
import { specFromFolder } from '../../nn/interchange/hf_folder.js';
import { architectureOf } from '../../nn/interchange/model_io.js';
import { isSafetensorsPath, readSafetensorsHeader } from '../../nn/interchange/safetensors.js';
import type { ModelSpec } from '../../nn/models/index.js';

export interface StageSource {
  resolved: ResolvedSource;
  spec: ModelSpec;
}

export function stageSource(source: string): StageSource {
  const resolved = resolveModelSource(source);
  return { resolved, spec: specOf(resolved) };
}

function specOf(resolved: ResolvedSource): ModelSpec {
  if (resolved.kind === 'folder') return specFromFolder(resolved.path);
  if (isGgufFile(resolved.path)) throw new CheckpointError(resolved.path, 'is a GGUF file, which runs in one process: a stage reads float32 layer ranges (drop --stages)');
  if (isSafetensorsPath(resolved.path)) {
    const fd = openSync(resolved.path, 'r');
    try {
      return architectureOf(resolved.path, readSafetensorsHeader(resolved.path, fd).metadata.architecture);
    } finally {
      closeSync(fd);
    }
  }
  // smolcluster's own model file: its header (the file is read once here; each stage then reads its tensors).
  return readModelHeader(resolved.path).header.architecture as ModelSpec;
}
