/**
 * An MLX quantized folder (mlx-lm's `convert -q`, the mlx-community models): config.json's
 * `"quantization": {"group_size": 64, "bits": 4|8}` and, for each quantized layer X, `X.weight`
 * (uint32 words of codes, little-endian, [out, in·bits/32]), `X.scales` and `X.biases`
 * ([out, in/64], bfloat16 or float16). Each weight is regrouped into our MLX blocks
 * (tensor/quant/mlx.ts: scale, bias, then the group's code bytes as they are: nothing re-rounded)
 * and held frozen; the other tensors (norms, unquantized layers) are read as a folder's are. The
 * folder is opened by its headers and each parameter's tensors read as it is given its values, so
 * a pipeline stage reads only its own layers'.
 */
import type { HfConfig } from './hf_config.js';
import { CheckpointError } from '../checkpoint.js';
import { type ModelSpec, createModel } from '../models/index.js';
import type { Module } from '../module.js';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { type QuantType, quantFormat } from '../../tensor/quant/formats.js';
import { MLX_GROUP } from '../../tensor/quant/mlx.js';
import { CPU, deviceMemory } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { type SafeTensor, toFloat32 } from './safetensors.js';
import { SafetensorsEntries } from './safetensors_entries.js';

export interface MlxQuantization { groupSize: number; bits: number }

/** config.json's "quantization" entry, or null for a float folder; per-layer overrides refused by name. */
export function mlxQuantizationOf(config: HfConfig, file: string): MlxQuantization | null {
  const q = (config as Record<string, unknown>).quantization as Record<string, unknown> | undefined;
  if (q === undefined || q === null) return null;
  const { group_size: groupSize, bits, ...rest } = q;
  const layered = Object.keys(rest).filter((k) => typeof rest[k] === 'object' || typeof rest[k] === 'boolean');
  if (layered.length > 0) throw new CheckpointError(file, `quantization has per-layer settings (${layered.slice(0, 2).join(', ')}), which we do not read yet`);
  if (groupSize !== MLX_GROUP || (bits !== 4 && bits !== 8)) {
    throw new CheckpointError(file, `quantization is ${bits}-bit in groups of ${groupSize}; we read MLX's 4- and 8-bit groups of ${MLX_GROUP}`);
  }
  return { groupSize, bits };
}

/** The model of an MLX quantized folder whose spec config.json gave. */
export function loadMlxFolder(dir: string, spec: ModelSpec, q: MlxQuantization): Module {
  if (spec.type !== 'llama') throw new CheckpointError(dir, `an MLX quantized ${spec.type} folder; we read the Llama family's`);
  // Built deferred, as a GGUF file's model (gguf_llama.ts): no float32 copy of a quantized weight.
  const model = buildDeferred(() => withoutRandomInit(() => createModel(spec, 0)));
  const folder = new MlxFolder(dir, q);
  try {
    const params = model.namedParameters();
    const formats = folder.formats(params);
    model.freeze((n) => formats.has(n));
    for (const [name, p] of params) folder.hold(name, p, formats.get(name));
  } finally {
    folder.close();
  }
  return model;
}

/**
 * An MLX quantized folder known by its headers: which of a model's parameters it holds in groups
 * (and in which format), each parameter's tensors read only when it is given its values — one
 * process reads them all, a pipeline stage its own layers' (parallel/pipeline/stage_values.ts).
 */
export class MlxFolder {
  private readonly tensors: SafetensorsEntries;

  constructor(readonly dir: string, private readonly q: MlxQuantization) {
    this.tensors = new SafetensorsEntries(dir);
  }

  /**
   * The quantized ones of `params` (a model's, by name) and their formats: each X.weight with
   * X.scales beside it. Every tensor of the folder is checked to have its place among them, and
   * every parameter its tensors, before anything is read.
   */
  formats(params: readonly [string, Tensor][]): Map<string, QuantType> {
    const { entries } = this.tensors;
    const formats = new Map<string, QuantType>();
    const placed = new Set<string>();
    for (const [name] of params) {
      const base = name.slice(0, -'weight'.length);
      const scales = name.endsWith('.weight') ? entries.get(`${base}scales`) : undefined;
      const own = scales ? [name, `${base}scales`, `${base}biases`] : [name];
      for (const t of own) if (!entries.has(t)) throw new CheckpointError(this.dir, `lacks ${t}`);
      for (const t of own) placed.add(t);
      if (scales) formats.set(name, formatOf(this.dir, base, this.q.bits, scales.dtype));
    }
    const extra = [...entries.keys()].filter((n) => !placed.has(n));
    if (extra.length > 0) throw new CheckpointError(this.dir, `holds tensors the model has no place for: ${extra.slice(0, 3).join(', ')}`);
    return formats;
  }

  /** Gives `p` (parameter `name`) its values: its groups as our blocks in `format` (frozen), else float32. */
  hold(name: string, p: Tensor, format: QuantType | undefined): void {
    if (format === undefined) {
      const values = this.read(name);
      if (values.shape.join() !== p.shape.join()) throw new CheckpointError(this.dir, `${name} is [${values.shape}], the model's is [${p.shape}]`);
      return p.bind(deviceMemory(CPU).fromHost(toFloat32(this.dir, name, values)), null);
    }
    const base = name.slice(0, -'weight'.length);
    const [scales, biases] = [this.read(`${base}scales`), this.read(`${base}biases`)];
    const type = formatOf(this.dir, base, this.q.bits, scales.dtype);
    if (type !== format) throw new CheckpointError(this.dir, `${name} is ${type}, its place planned ${format}`);
    p.requiresGrad = false;
    p.holdFrozen(deviceMemory(CPU).fromHost(mlxBlocks(this.dir, base, this.read(name), scales, biases, p.shape as [number, number], type), type));
  }

  /** Tensor `n` of the folder, its bytes read from its shard. */
  private read(n: string): SafeTensor {
    const entry = this.tensors.entries.get(n);
    if (entry === undefined) throw new CheckpointError(this.dir, `lacks ${n}`);
    return { dtype: entry.dtype, shape: entry.shape, bytes: this.tensors.bytes(n) };
  }

  close(): void {
    this.tensors.close();
  }
}

function formatOf(dir: string, base: string, bits: number, scaleDtype: string): QuantType {
  if (scaleDtype !== 'BF16' && scaleDtype !== 'F16') throw new CheckpointError(dir, `${base}scales is ${scaleDtype}; MLX keeps scales in BF16 or F16`);
  return `mlx${bits}${scaleDtype === 'F16' ? '_f16' : ''}` as QuantType;
}

/** X.weight, X.scales and X.biases of a [rows, cols] layer as our blocks: per group its scale, bias and code bytes. */
function mlxBlocks(dir: string, base: string, w: SafeTensor, scales: SafeTensor, biases: SafeTensor, [rows, cols]: [number, number], type: QuantType): Uint8Array {
  const { blockBytes } = quantFormat(type);
  const codeBytes = blockBytes - 4;
  const groups = cols / MLX_GROUP;
  if (w.dtype !== 'U32' || w.bytes.length !== rows * groups * codeBytes) throw new CheckpointError(dir, `${base}weight is ${w.dtype} [${w.shape}], not the U32 codes of a [${rows}, ${cols}] layer`);
  for (const [t, n] of [[scales, 'scales'], [biases, 'biases']] as const) {
    if (t.shape.join() !== `${rows},${groups}` || t.dtype !== scales.dtype) throw new CheckpointError(dir, `${base}${n} is ${t.dtype} [${t.shape}], not [${rows}, ${groups}] in ${scales.dtype}`);
  }
  const out = new Uint8Array(rows * groups * blockBytes);
  for (let g = 0; g < rows * groups; g++) {
    const at = g * blockBytes;
    out.set(scales.bytes.subarray(2 * g, 2 * g + 2), at);
    out.set(biases.bytes.subarray(2 * g, 2 * g + 2), at + 2);
    out.set(w.bytes.subarray(g * codeBytes, (g + 1) * codeBytes), at + 4);
  }
  return out;
}

