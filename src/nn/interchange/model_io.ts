import { CheckpointError, loadModel } from '../checkpoint.js';
import { BatchNorm } from '../layers/norm.js';
import { type ModelSpec, createModel } from '../models/index.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import type { Module } from '../module.js';
import { isAdapterParameter } from '../lora/names.js';
import type { Tensor } from '../../tensor/tensor.js';
import { nameMapFor } from './hf_names.js';
import { isFolder, readFolderTensors } from './hf_weights.js';
import { type SafeTensor, type WriteDtype, type WriteTensor, isSafetensorsPath, readSafetensors, toFloat32, writeSafetensors } from './safetensors.js';

/** The model's parameters a model file holds: all but LoRA adapters' (those go to a PEFT folder: nn/lora/peft.ts). */
function baseParameters(model: Module): [string, Tensor][] {
  return model.namedParameters().filter(([name]) => !isAdapterParameter(name));
}

/** [rows, cols] → [cols, rows], copied. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}

/** What `--save-dtype` takes (config/options/choices.ts SAVE_DTYPES), as safetensors names it. */
export type SaveDtype = 'fp32' | 'bf16' | 'f16';
const SAFE_DTYPE: Record<SaveDtype, WriteDtype> = { fp32: 'F32', bf16: 'BF16', f16: 'F16' };

/**
 * Writes the model as safetensors under PyTorch / Hugging Face names (hf_names.ts), with tied
 * copies and BatchNorm's num_batches_tracked so torch's strict load_state_dict accepts it. The spec
 * goes into __metadata__.architecture. `dtype` narrows every floating-point tensor (parameters and
 * buffers) to bf16 or f16, rounded to nearest even, as a published bf16 model ships; the model's
 * own weights stay fp32.
 */
export function saveSafetensors(file: string, model: Module, spec: ModelSpec, meta: Record<string, unknown> = {}, dtype: SaveDtype = 'fp32'): void {
  writeSafetensors(file, externalTensors(model, spec, dtype), safetensorsMetadata(spec, meta));
}

/** The __metadata__ of a file we write: format pt (transformers requires it), the spec and `meta`. */
export function safetensorsMetadata(spec: ModelSpec, meta: Record<string, unknown> = {}): Record<string, string> {
  const metadata: Record<string, string> = { format: 'pt', architecture: JSON.stringify(spec) };
  for (const [k, v] of Object.entries(meta)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return metadata;
}

/**
 * The model's tensors under PyTorch / Hugging Face names and layouts (hf_names.ts), floating-point
 * ones as `dtype`, with tied copies and BatchNorm's num_batches_tracked (what torch's strict
 * load_state_dict expects).
 */
export function externalTensors(model: Module, spec: ModelSpec, dtype: SaveDtype = 'fp32'): [string, WriteTensor][] {
  const as = SAFE_DTYPE[dtype];
  const names = nameMapFor(spec);
  const out: [string, WriteTensor][] = [];
  const byName = new Map(baseParameters(model));
  for (const [name, p] of byName) {
    const data = p.values() as Float32Array;
    out.push(names.transposed(name)
      ? [names.external(name), { shape: [p.shape[1], p.shape[0]], data: transpose2d(data, p.shape[0], p.shape[1]), dtype: as }]
      : [names.external(name), { shape: p.shape, data, dtype: as }]);
  }
  for (const [name, b] of model.namedBuffers()) out.push([names.external(name), { shape: [b.length], data: b, dtype: as }]);
  for (const [name, m] of model.namedModules()) {
    if (m instanceof BatchNorm) out.push([`${name}.num_batches_tracked`, { shape: [], int64: [BigInt(m.batchesTracked)] }]);
  }
  for (const [ext, ours] of names.tiedCopies) {
    const p = byName.get(ours);
    if (p) out.push([ext, { shape: p.shape, data: p.values() as Float32Array, dtype: as }]);
  }
  return out;
}

/**
 * Loads a safetensors file (ours, or a PyTorch / Hugging Face one) into the model. Every parameter
 * and buffer must be present with its shape; tensors the model does not use are refused by name
 * unless they are known tied copies or unused buffers.
 */
export function loadSafetensors(file: string, model: Module, spec: ModelSpec): void {
  loadTensors(file, readSafetensors(file).tensors, model, spec);
}

/** Loads a Hugging Face folder's weights (model.safetensors or its shards: hf_weights.ts) into the model. */
export function loadFolderWeights(dir: string, model: Module, spec: ModelSpec): void {
  loadTensors(dir, readFolderTensors(dir), model, spec);
}

const SPEC_TYPES = new Set<string>(['mlp', 'cnn', 'resnet', 'gpt2', 'bert', 'llama']);

/**
 * A model rebuilt from a safetensors file that saveSafetensors wrote: the spec from its
 * `__metadata__.architecture`, the weights from its tensors. A file without that metadata (one
 * PyTorch or Hugging Face wrote) is refused by name: build the model from its spec, then call
 * loadSafetensors.
 */
export function loadSafetensorsModel(file: string): { model: Module; spec: ModelSpec } {
  const { tensors, metadata } = readSafetensors(file);
  const spec = architectureOf(file, metadata.architecture);
  const model = withoutRandomInit(() => createModel(spec, 0));
  loadTensors(file, tensors, model, spec);
  return { model, spec };
}

/** The spec a smolcluster safetensors file records in __metadata__.architecture. */
export function architectureOf(file: string, text: string | undefined): ModelSpec {
  if (text === undefined) throw new CheckpointError(file, 'has no __metadata__.architecture (not saved by smolcluster): build the model from its spec and call loadSafetensors');
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch {
    throw new CheckpointError(file, '__metadata__.architecture is not valid JSON');
  }
  const type = (spec as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !SPEC_TYPES.has(type)) {
    throw new CheckpointError(file, `__metadata__.architecture has type ${JSON.stringify(type)}; expected one of ${[...SPEC_TYPES].join(', ')}`);
  }
  return spec as ModelSpec;
}

function loadTensors(file: string, tensors: Map<string, SafeTensor>, model: Module, spec: ModelSpec): void {
  const names = nameMapFor(spec);
  const sources = matchTensors(file, tensors, model, spec);
  const valuesOf = (name: string, shape: readonly number[]): Float32Array => {
    const ext = sources.get(name)!;
    const values = toFloat32(file, ext, tensors.get(ext)!);
    return names.transposed(name) ? transpose2d(values, shape[1], shape[0]) : values;
  };
  for (const [name, p] of baseParameters(model)) p.storage.write(valuesOf(name, p.shape));
  // Through the storages: loading works on any device.
  for (const [name, b] of model.namedBufferStorages()) b.write(valuesOf(name, [b.size]));
}

/**
 * The file's tensor for each of the model's parameters and buffers (our name → its name there),
 * every shape checked; a tensor the model needs and the file lacks, or one the file holds and the
 * model does not have (unless a known tied copy or unused buffer), is refused by name.
 */
export function matchTensors(file: string, tensors: ReadonlyMap<string, { shape: readonly number[] }>, model: Module, spec: ModelSpec): Map<string, string> {
  const names = nameMapFor(spec);
  const found = new Map<string, string>();
  const missing: string[] = [];
  const match = (name: string, shape: readonly number[]): void => {
    const ext = names.candidates(name).find((c) => tensors.has(c));
    if (!ext) {
      missing.push(names.external(name));
      return;
    }
    found.set(name, ext);
    const t = tensors.get(ext)!;
    const want = names.transposed(name) ? [shape[1], shape[0]] : [...shape];
    if (t.shape.join('x') !== want.join('x')) {
      throw new CheckpointError(file, `tensor "${ext}" has shape [${t.shape.join(', ')}], the model needs [${want.join(', ')}] (${spec.type}: check --layers/--width/--heads/--context and the vocabulary)`);
    }
  };
  for (const [name, p] of baseParameters(model)) match(name, p.shape);
  for (const [name, b] of model.namedBufferStorages()) match(name, [b.size]);
  if (missing.length && found.size === 0) throw new CheckpointError(file, `holds none of the tensors of a ${spec.type} model${looksLike(tensors.keys())}`);
  if (missing.length) throw new CheckpointError(file, `missing ${missing.length} tensor(s) the model needs: ${preview(missing)}`);
  const used = new Set(found.values());
  const unexpected = [...tensors.keys()].filter((k) => !used.has(k) && !names.skippable(k));
  if (unexpected.length) throw new CheckpointError(file, `${unexpected.length} tensor(s) this ${spec.type} model does not have: ${preview(unexpected)}`);
  return found;
}

/** Families by their checkpoints' tensor names, to say what a file that fits nothing of ours holds. */
const FAMILY_NAMES: [RegExp, string][] = [
  [/^(model\.)?layers\.\d+\.self_attn\./, 'a Llama-family (llama, qwen2, qwen3, mistral, ...)'],
  [/^(transformer\.)?h\.\d+\.attn\./, 'a GPT-2'],
  [/^bert\./, 'a BERT'],
  [/^layer\d\.\d+\.conv\d/, 'a ResNet'],
];

function looksLike(names: Iterable<string>): string {
  const list = [...names];
  const family = FAMILY_NAMES.find(([re]) => list.some((n) => re.test(n)));
  const what = family ? ` (it looks like ${family[1]} checkpoint: ${preview(list.filter((n) => family[0].test(n)))})` : ` (it holds ${preview(list)})`;
  return `${what}; --init a Hugging Face folder (with its config.json) to build the model it holds`;
}

function preview(list: string[]): string {
  return list.slice(0, 5).join(', ') + (list.length > 5 ? `, … (${list.length - 5} more)` : '');
}

/** --init: start from a Hugging Face folder's weights, or a file's: safetensors (by extension) or our own model format. */
export function initFromFile(file: string, model: Module, spec: ModelSpec): void {
  if (isFolder(file)) loadFolderWeights(file, model, spec);
  else if (isSafetensorsPath(file)) loadSafetensors(file, model, spec);
  else loadModel(file, model, spec);
}

/** --save: safetensors when the name ends in .safetensors, else our own format. */
export { isSafetensorsPath };
