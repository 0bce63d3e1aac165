/**
 * `smolcluster info --model M`: the bytes a model's weights take per format, what loading holds in
 * memory for fp32 generation (quantized tensors as their blocks; a Llama-family folder's BF16 and
 * F16 matrices as they are, the other float ones widened to float32, as the loaders do), the
 * KV cache a token adds, what each `--quantize` scheme would hold (a float Llama-family folder), and
 * whether it fits this machine's available memory. Only headers are read, never the weights.
 */
import { closeSync, openSync } from 'node:fs';
import { isGgufFile, readGgufHeader } from '../nn/interchange/gguf.js';
import { specFromGguf } from '../nn/interchange/gguf_llama.js';
import { specFromFolder } from '../nn/interchange/hf_folder.js';
import { folderWeights } from '../nn/interchange/hf_weights.js';
import { readSafetensorsHeader } from '../nn/interchange/safetensors.js';
import type { ModelSpec } from '../nn/models/index.js';
import { QUANT_SCHEMES, type QuantScheme, planBytes, planFromShapes } from '../nn/quantize_model.js';
import { ModelSourceError, resolveModelSource } from './model_source.js';

export interface FormatBytes {
  /** F32, F16, BF16, or a quantized format (q4_k, ...). */
  readonly format: string;
  readonly tensors: number;
  /** In the file, and held in memory once loaded. */
  readonly fileBytes: number;
  readonly heldBytes: number;
}

export interface WeightReport {
  readonly path: string;
  readonly spec: ModelSpec;
  readonly formats: readonly FormatBytes[];
  /** Bytes the KV cache adds per token in float32 (keys and values of every layer). */
  readonly kvBytesPerToken: number;
  /** Per --quantize scheme, the bytes held: for a float Llama-family model only. */
  readonly schemes: readonly { scheme: QuantScheme; heldBytes: number }[];
}

const FLOAT_BYTES: Readonly<Record<string, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** One tensor as a header lists it. */
interface TensorEntry { name: string; shape: readonly number[]; format: string; bytes: number }

/** The weight report of what `source` names (a GGUF file or a Hugging Face folder). */
export async function weightReport(source: string): Promise<WeightReport> {
  const resolved = resolveModelSource(source);
  let tensors: TensorEntry[];
  let spec: ModelSpec;
  if (resolved.kind === 'file' && isGgufFile(resolved.path)) {
    const file = await readGgufHeader(resolved.path);
    spec = specFromGguf(file);
    tensors = [...file.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, format: t.type, bytes: t.bytes }));
  } else if (resolved.kind === 'folder') {
    spec = specFromFolder(resolved.path);
    tensors = folderTensors(resolved.path);
  } else {
    throw new ModelSourceError(source, 'info --model reads a GGUF file or a Hugging Face folder');
  }
  // A Llama-family folder is read in place: its BF16 and F16 matrices stay 16-bit (nn/interchange/inference_folder.ts).
  const keepsHalfMatrices = resolved.kind === 'folder' && spec.type === 'llama';
  const formats = new Map<string, FormatBytes>();
  for (const t of tensors) {
    const half = keepsHalfMatrices && t.shape.length === 2 && (t.format === 'BF16' || t.format === 'F16');
    const held = t.format in FLOAT_BYTES && !half ? (t.bytes / FLOAT_BYTES[t.format]) * 4 : t.bytes;
    const f = formats.get(t.format) ?? { format: t.format, tensors: 0, fileBytes: 0, heldBytes: 0 };
    formats.set(t.format, { ...f, tensors: f.tensors + 1, fileBytes: f.fileBytes + t.bytes, heldBytes: f.heldBytes + held });
  }
  const floatOnly = tensors.every((t) => t.format in FLOAT_BYTES);
  const schemes = spec.type === 'llama' && floatOnly ? QUANT_SCHEMES.map((scheme) => ({ scheme, heldBytes: schemeBytes(tensors, spec as Extract<ModelSpec, { type: 'llama' }>, scheme) })) : [];
  return { path: resolved.path, spec, formats: [...formats.values()], kvBytesPerToken: kvBytesPerToken(spec), schemes };
}

/** Every tensor of a folder's safetensors files, from their headers (ours and Hugging Face's names agree for the Llama family). */
function folderTensors(dir: string): TensorEntry[] {
  const out: TensorEntry[] = [];
  for (const file of folderWeights(dir).files) {
    const fd = openSync(file, 'r');
    try {
      for (const [name, e] of readSafetensorsHeader(file, fd).entries) out.push({ name, shape: e.shape, format: e.dtype, bytes: e.end - e.begin });
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

function schemeBytes(tensors: readonly TensorEntry[], spec: Extract<ModelSpec, { type: 'llama' }>, scheme: QuantScheme): number {
  const shapes = tensors.map((t) => [t.name, t.shape] as const);
  const { bytesBefore, bytesAfter } = planBytes(shapes, planFromShapes(shapes, spec, scheme));
  const floatBytes = tensors.reduce((n, t) => n + 4 * t.shape.reduce((a, b) => a * b, 1), 0);
  return floatBytes - bytesBefore + bytesAfter;
}

function kvBytesPerToken(spec: ModelSpec): number {
  if (spec.type === 'llama') return 2 * spec.layers * spec.kvHeads * spec.headDim * 4;
  if (spec.type === 'gpt2') return 2 * spec.layers * spec.width * 4;
  return 0;
}

/** Bytes this machine can give a process now (util/node_memory.ts), where `info` and the estimates have read it. */
export { availableMemory } from '../util/node_memory.js';

/** The report as `info --model` prints it, with whether it fits `available` bytes at the model's context. */
export function formatWeightReport(r: WeightReport, available: number): string {
  const held = r.formats.reduce((n, f) => n + f.heldBytes, 0);
  const context = 'context' in r.spec ? r.spec.context : 0;
  const kv = r.kvBytesPerToken * context;
  const lines = [`model      ${r.path}`];
  for (const f of r.formats) lines.push(`weights    ${f.format.padEnd(5)} ${String(f.tensors).padStart(4)} tensors  ${mb(f.fileBytes).padStart(10)} in the file, ${mb(f.heldBytes)} held`);
  lines.push(`kv cache   ${(r.kvBytesPerToken / 1024).toFixed(1)} KB a token (fp32), ${mb(kv)} at ${context} positions`);
  const fits = held + kv <= available;
  lines.push(`memory     ${mb(held)} + ${mb(kv)} of ${mb(available)} available: ${fits ? 'fits' : 'does not fit'}`);
  for (const s of r.schemes) lines.push(`--quantize ${s.scheme.padEnd(6)} ${mb(s.heldBytes).padStart(10)} held${s.heldBytes + kv <= available ? '' : ' (does not fit)'}`);
  return lines.join('\n');
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}
