/**
 * `--quantize SCHEME` at load: a Llama-family model's weight matrices put in quantized formats
 * (tensor/quant/formats.ts) where they stand, as llama.cpp's `llama-quantize` picks them, so a model
 * read from any folder runs as a GGUF file of that scheme would. Each weight is frozen and its
 * float32 storage let go: the model holds the blocks only.
 *
 *   q8_0     every matrix Q8_0
 *   q4_0     every matrix Q4_0, the output head (or a tied embedding, which is the head) Q6_K
 *   q4_k_m   llama.cpp's Q4_K_M mix: Q4_K, with the head, and attn_v and ffn_down in the layers
 *            `useMoreBits` picks, Q6_K; a row that is not whole 256-blocks falls back as llama.cpp's
 *            does (Q4_K → Q5_0, Q6_K → Q8_0): Qwen2.5-0.5B (hidden 896) is mostly Q5_0
 *   q5_k_m   llama.cpp's Q5_K_M mix: the same with Q5_K for Q4_K (falling back to Q5_1)
 *   mlx4     mlx-lm's `quantize` default: every matrix 4-bit, groups of 64, bf16 scales and biases
 *   mlx8     the same at 8 bits
 *   nf4      QLoRA's base (bitsandbytes' NF4 with double quantization, as tensor/quant/nf4.ts holds it):
 *            every matrix of the layers NF4; the embedding and the head stay float32, as QLoRA keeps
 *            them in 16 bits (they are not Linear layers of the blocks)
 *
 * Norms, biases and MoE routers stay float32 (llama.cpp never quantizes them). mlx-lm leaves a
 * matrix whose rows are not whole groups unquantized, and so does this.
 */
import { type QuantType, quantBytes, quantFormat } from '../tensor/quant/formats.js';
import { quantize } from '../tensor/ops/quant.js';
import { isAdapterParameter } from './lora/names.js';
import type { Module } from './module.js';
import type { LlamaSpec } from './models/llama.js';

export const QUANT_SCHEMES = ['q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'mlx4', 'mlx8', 'nf4'] as const;

/** The schemes a GGUF file holds (llama.cpp's types; MLX's groups and NF4 are not). */
export const GGUF_SCHEMES = ['q8_0', 'q4_0', 'q4_k_m', 'q5_k_m'] as const;
export type GgufScheme = (typeof GGUF_SCHEMES)[number];
export type QuantScheme = (typeof QUANT_SCHEMES)[number];

/** What a weight is to llama.cpp's rules. */
type Role = 'output' | 'embedding' | 'attn_v' | 'ffn_down' | 'other';

export interface QuantizedModel {
  /** Per weight quantized: its format. */
  readonly types: ReadonlyMap<string, QuantType>;
  /** Weights left float32 (rows not whole blocks of an MLX group), by name. */
  readonly kept: readonly string[];
  /** Bytes of the weights quantized, before (float32) and after. */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

export function isQuantScheme(s: string): s is QuantScheme {
  return (QUANT_SCHEMES as readonly string[]).includes(s);
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between. */
export function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= 7 * eighth || (layer - eighth) % 3 === 2;
}

/** The format of one weight under `scheme`, or null when it stays float32. */
export function formatFor(scheme: QuantScheme, role: Role, layer: number, layers: number, cols: number): QuantType | null {
  if (scheme === 'mlx4' || scheme === 'mlx8') return cols % quantFormat(scheme).blockWeights === 0 ? scheme : null;
  if (scheme === 'nf4') return role !== 'output' && role !== 'embedding' && cols % quantFormat('nf4').blockWeights === 0 ? 'nf4' : null;
  let type: QuantType;
  if (scheme === 'q8_0') type = 'q8_0';
  else if (role === 'output') type = 'q6_k';
  else if (scheme === 'q4_0') type = 'q4_0';
  else if ((role === 'attn_v' || role === 'ffn_down') && useMoreBits(layer, layers)) type = 'q6_k';
  else type = scheme === 'q5_k_m' ? 'q5_k' : 'q4_k';
  return withFallback(type, cols);
}

/** The format most of a GGUF scheme's matrices take: a matrix of whole super-blocks that is neither the head nor a `useMoreBits` one. */
export function mostMatricesOf(scheme: GgufScheme): QuantType {
  return formatFor(scheme, 'other', 0, 1, 256)!;
}

/** llama.cpp's fallback for a row that is not whole K-quant super-blocks (256 weights). */
function withFallback(type: QuantType, cols: number): QuantType {
  if (cols % quantFormat(type).blockWeights === 0) return type;
  const fallback: Partial<Record<QuantType, QuantType>> = { q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0' };
  const next = fallback[type];
  if (!next || cols % quantFormat(next).blockWeights !== 0) {
    throw new RangeError(`a row of ${cols} weights is not whole ${type} blocks, nor of its fallback`);
  }
  return next;
}

/** Each weight matrix of a Llama-family model and what it is to llama.cpp (null: it stays float32). */
function roleOf(name: string, spec: LlamaSpec): { role: Role; layer: number } | null {
  // A LoRA adapter over a weight trains (QLoRA): it stays float32.
  if (isAdapterParameter(name)) return null;
  if (name === 'lm_head.weight') return { role: 'output', layer: 0 };
  if (name === 'model.embed_tokens.weight') return { role: spec.tieEmbeddings ? 'output' : 'embedding', layer: 0 };
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name);
  if (!m || /(norm|block_sparse_moe\.gate)$/.test(m[2])) return null;
  const role = m[2] === 'self_attn.v_proj' ? 'attn_v' : /mlp\.down_proj|experts\.\d+\.w2/.test(m[2]) ? 'ffn_down' : 'other';
  return { role, layer: Number(m[1]) };
}

/** The format each weight of `model` takes under `scheme` (a plan; nothing changes). */
export function quantizationPlan(model: Module, spec: LlamaSpec, scheme: QuantScheme): Map<string, QuantType | null> {
  return planFromShapes(model.namedParameters().map(([n, p]) => [n, p.shape]), spec, scheme);
}

/** The same from the tensors' names and shapes alone (a folder's headers: `info --model`, no weights read). */
export function planFromShapes(tensors: Iterable<readonly [string, readonly number[]]>, spec: LlamaSpec, scheme: QuantScheme): Map<string, QuantType | null> {
  const plan = new Map<string, QuantType | null>();
  for (const [name, shape] of tensors) {
    const r = shape.length === 2 ? roleOf(name, spec) : null;
    if (r) plan.set(name, formatFor(scheme, r.role, r.layer, spec.layers, shape[1]));
  }
  return plan;
}

/** Quantizes `model`'s weights in place under `scheme` (a model nothing trains: a generator's). */
export function quantizeModel(model: Module, spec: LlamaSpec, scheme: QuantScheme): QuantizedModel {
  const plan = quantizationPlan(model, spec, scheme);
  // Frozen first (refused once an arena holds them: a model that trains keeps float32 masters). Under
  // LoRA they are frozen already, and the arena of the adapters may exist.
  if (model.namedParameters().some(([name, p]) => plan.get(name) != null && p.requiresGrad)) model.freeze((name) => plan.get(name) != null);
  const params = new Map(model.namedParameters());
  const { bytesBefore, bytesAfter } = planBytes([...params].map(([n, p]) => [n, p.shape]), plan);
  const types = new Map<string, QuantType>();
  const kept: string[] = [];
  for (const [name, type] of plan) {
    if (type === null) {
      kept.push(name);
      continue;
    }
    const p = params.get(name)!;
    p.holdFrozen(quantize(p, type).storage);
    types.set(name, type);
  }
  return { types, kept, bytesBefore, bytesAfter };
}

/**
 * The bytes of the matrices `plan` quantizes, as float32 before and as their blocks after (each
 * counted as `span` says: a place in a block of huge pages rounds it up). Before anything is read:
 * a folder's headers give the shapes.
 */
export function planBytes(
  shapes: Iterable<readonly [string, readonly number[]]>,
  plan: ReadonlyMap<string, QuantType | null>,
  span = (n: number) => n,
): { bytesBefore: number; bytesAfter: number } {
  let [bytesBefore, bytesAfter] = [0, 0];
  for (const [name, [rows, cols]] of shapes) {
    const type = plan.get(name);
    if (!type) continue;
    bytesBefore += 4 * rows * cols;
    bytesAfter += span(quantBytes(type, rows, cols, name));
  }
  return { bytesBefore, bytesAfter };
}
