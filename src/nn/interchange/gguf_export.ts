/**
 * A Llama-family model as a GGUF file llama.cpp and Ollama load (`smolcluster export --out X.gguf`):
 * the metadata llama.cpp's loader reads, llama.cpp's tensor names (gguf_llama.ts, inverted), q and k
 * rows in its order for `llama`, each matrix in the format `--quantize` gives it (quantize_model.ts,
 * llama.cpp's mix) or float32, norms and biases float32; and the tokenizer, from the model's
 * tokenizer.json as llama.cpp's converter writes it, or copied from the GGUF file it was read from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { quantize } from '../../tensor/ops/quant.js';
import { type QuantType, isQuantType, quantBytes, quantFormat } from '../../tensor/quant/formats.js';
import { deinterleaveRows8, isRows8, rowFormatOf } from '../../tensor/quant/rows8.js';
import { Tensor } from '../../tensor/tensor.js';
import { CheckpointError } from '../checkpoint.js';
import type { MetadataValue } from './gguf.js';
import type { LlamaSpec } from '../models/llama.js';
import type { Module } from '../module.js';
import { GGUF_SCHEMES, type QuantScheme, planFromShapes } from '../quantize_model.js';
import { parameterNameOf } from './gguf_llama.js';
import { preTokenizerName } from './gguf_pre_tokenizers.js';
import { reorderRopeRows } from './gguf_rope_rows.js';
import { inverseFrequencies, llama3Frequencies } from '../layers/rotary.js';
import { type GgufTensorOut, type GgufValue, writeGguf } from './gguf_writer.js';

/** llama.cpp's LlamaFileType of each scheme (general.file_type). */
// llama.cpp's llama_ftype: LLAMA_FTYPE_ALL_F32, MOSTLY_Q8_0, MOSTLY_Q4_0, MOSTLY_Q4_K_M, MOSTLY_Q5_K_M.
const FILE_TYPE: Readonly<Record<'f32' | 'q8_0' | 'q4_0' | 'q4_k_m' | 'q5_k_m', number>> = { f32: 0, q8_0: 7, q4_0: 2, q4_k_m: 15, q5_k_m: 17 };
const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;
const TOKEN_UNUSED = 5;

export interface GgufExportOptions {
  /** The matrices' formats (default: float32 as they are held; a quantized model keeps its blocks). */
  quantize?: QuantScheme;
  /** Where the tokenizer comes from: a tokenizer.json (its folder's tokenizer_config.json too), or a GGUF file's metadata. */
  tokenizer: { json: string } | { gguf: Readonly<Record<string, MetadataValue>> };
  name?: string;
  /** A model with LoRA layers written merged (nn/lora/merged_values.ts): W + (alpha / r)·B A in each adapted weight's place. */
  merged?: MergedValues;
}

/** How a model's LoRA layers are written merged. */
export interface MergedValues {
  /** Whether `name` is an adapter's own tensor (lora_A, lora_B): not written. */
  isAdapter(name: string): boolean;
  /** The merged float32 values of parameter `name`, made when asked; null where no adapter changes it. */
  of(name: string): (() => Promise<Float32Array>) | null;
}

/**
 * Writes `model` (the Llama family) to `path` as GGUF (its weights read from their device), one
 * tensor made at a time: a merged or requantized 8B model never exists whole beside its base.
 */
export async function exportGguf(path: string, model: Module, spec: LlamaSpec, opts: GgufExportOptions): Promise<void> {
  if (opts.quantize !== undefined && !(GGUF_SCHEMES as readonly string[]).includes(opts.quantize)) {
    throw new CheckpointError(path, `--quantize ${opts.quantize} is not a format GGUF holds (${GGUF_SCHEMES.join(', ')})`);
  }
  const params = model.namedParameters().filter(([name]) => !opts.merged?.isAdapter(name));
  const plan = opts.quantize ? planFromShapes(params.map(([name, p]) => [name, p.shape]), spec, opts.quantize) : new Map<string, QuantType | null>();
  const tensors = params.map(([name, p]) => tensorOut(name, p, spec, plan.get(name) ?? null, opts.merged?.of(name) ?? null));
  if (spec.ropeScaling) tensors.push(ropeFreqs(spec));
  const metadata = new Map<string, GgufValue>([...modelMetadata(spec, opts), ...tokenizerMetadata(path, spec, opts.tokenizer)]);
  await writeGguf(path, metadata, tensors);
}

/** Our parameter name → llama.cpp's (the inverse of parameterNameOf over the names a model has). */
function ggufNameOf(name: string, spec: LlamaSpec): string {
  for (const candidate of ggufCandidates(name)) if (parameterNameOf(candidate) === name) return candidate;
  throw new Error(`export: ${name} has no GGUF name for ${spec.modelType}`);
}

function ggufCandidates(name: string): string[] {
  const top = ['token_embd.weight', 'output_norm.weight', 'output.weight'];
  const m = /^model\.layers\.(\d+)\.[a-z_.]+\.(weight|bias)$/.exec(name);
  if (!m) return top;
  const parts = ['attn_norm', 'ffn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_q_norm', 'attn_k_norm', 'ffn_gate', 'ffn_up', 'ffn_down'];
  return parts.map((p) => `blk.${m[1]}.${p}.${m[2]}`);
}

/**
 * One parameter's entry: a quantized weight keeps its blocks, a float one takes the plan's format (or
 * float32); a merged weight is float (merged: its values) and takes the plan's format too.
 */
function tensorOut(name: string, p: Tensor, spec: LlamaSpec, type: QuantType | null, merged: (() => Promise<Float32Array>) | null): GgufTensorOut {
  const ggufName = ggufNameOf(name, spec);
  // A matrix held interleaved for the cpu's products (q4_0x8, …) is written in its row format.
  const kept: QuantType | null = !merged && isQuantType(p.dtype) ? p.dtype : null;
  const format: QuantType | null = kept ? rowFormatOf(kept) : type;
  const ggmlType = format ? quantFormat(format).ggmlType : 0;
  if (ggmlType === null) throw new Error(`export: ${name} is ${format}, which GGUF does not hold`);
  const cols = p.ndim === 2 ? p.shape[1] : 1;
  const byteLength = format ? quantBytes(format, p.size / cols, cols) : p.size * 4;
  const bytes = async (): Promise<Uint8Array> => {
    const source = merged ? Tensor.fromHost(await merged(), p.shape) : p;
    const held = isQuantType(source.dtype) ? source : format ? quantize(source, format) : source;
    const raw = await held.read();
    let out = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    if (isRows8(held.dtype)) out = deinterleaveRows8(held.dtype, out, p.size / cols, cols);
    const qk = /^blk\.\d+\.attn_(q|k)\.(weight|bias)$/.exec(ggufName);
    if (ggufArchitecture(spec) === 'llama' && qk) out = reorderRopeRows(out, qk[1] === 'q' ? spec.heads : spec.kvHeads, format ? quantBytes(format, 1, cols) : cols * 4, 'pairs');
    return out;
  };
  return { name: ggufName, shape: p.shape, ggmlType, byteLength, bytes };
}

/**
 * Llama 3's rotary scaling as llama.cpp's converter writes it: the factor each frequency is divided
 * by (rope_freqs.weight, float32), which gguf_llama.ts's ropeScalingOf recognises on reading.
 */
function ropeFreqs(spec: LlamaSpec): GgufTensorOut {
  const inv = inverseFrequencies(spec.headDim, spec.ropeTheta);
  const scaled = llama3Frequencies(inv, spec.ropeScaling!);
  const factors = Float32Array.from(inv, (f, i) => f / scaled[i]);
  return { name: 'rope_freqs.weight', shape: [factors.length], ggmlType: 0, byteLength: factors.byteLength, bytes: async () => new Uint8Array(factors.buffer) };
}
/** The file's architecture: a Mistral is written as llama.cpp's converter writes one, `llama` (its q/k rows permuted likewise). */
function ggufArchitecture(spec: LlamaSpec): string {
  return spec.modelType === 'mistral' ? 'llama' : spec.modelType;
}

function modelMetadata(spec: LlamaSpec, opts: GgufExportOptions): [string, GgufValue][] {
  const a = ggufArchitecture(spec);
  if (a === 'mixtral') throw new Error('export: a mixture of experts is not written as GGUF yet');
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufValue => ({ type: 'f32', value });
  return [
    ['general.architecture', { type: 'string', value: a }],
    ['general.name', { type: 'string', value: opts.name ?? `smolcluster-${a}` }],
    ['general.file_type', u32(FILE_TYPE[(opts.quantize ?? 'f32') as keyof typeof FILE_TYPE])],
    ['general.quantization_version', u32(2)],
    [`${a}.context_length`, u32(spec.context)],
    [`${a}.embedding_length`, u32(spec.width)],
    [`${a}.block_count`, u32(spec.layers)],
    [`${a}.feed_forward_length`, u32(spec.intermediate)],
    [`${a}.attention.head_count`, u32(spec.heads)],
    [`${a}.attention.head_count_kv`, u32(spec.kvHeads)],
    [`${a}.attention.key_length`, u32(spec.headDim)],
    [`${a}.attention.value_length`, u32(spec.headDim)],
    [`${a}.rope.dimension_count`, u32(spec.headDim)],
    [`${a}.rope.freq_base`, f32(spec.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(spec.rmsEps)],
    [`${a}.vocab_size`, u32(spec.vocabSize)],
  ];
}

function tokenizerMetadata(path: string, spec: LlamaSpec, from: GgufExportOptions['tokenizer']): [string, GgufValue][] {
  if ('gguf' in from) return Object.entries(from.gguf).filter(([k]) => k.startsWith('tokenizer.')).map(([k, v]) => [k, asGgufValue(k, v)]);
  return tokenizerJsonMetadata(path, from.json, spec.vocabSize);
}

/** A value read from a GGUF file, written back with the type llama.cpp's converter gives that key. */
function asGgufValue(key: string, v: MetadataValue): GgufValue {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'boolean') return { type: 'bool', value: v };
  if (typeof v === 'number' || typeof v === 'bigint') return { type: 'u32', value: Number(v) };
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return { type: 'strings', value: v as string[] };
  if (Array.isArray(v)) return { type: key.endsWith('scores') ? 'f32s' : 'i32s', value: (v as (number | bigint)[]).map(Number) };
  throw new Error(`export: metadata ${key} has a value we cannot write`);
}

/** The tokenizer.* metadata of a byte-level BPE tokenizer.json, as convert_hf_to_gguf.py writes it. */
function tokenizerJsonMetadata(path: string, file: string, vocabSize: number): [string, GgufValue][] {
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    model?: { type?: string; vocab?: Record<string, number>; merges?: (string | string[])[] }; pre_tokenizer?: unknown;
    added_tokens?: { id: number; content: string; special: boolean }[];
  };
  if (json.model?.type !== 'BPE' || !json.model.vocab || !json.model.merges) throw new CheckpointError(path, `${file} is not a byte-level BPE tokenizer, which is what we write to GGUF`);
  const pre = preTokenizerName(json);
  if (pre === null) throw new CheckpointError(path, `${file}'s pre-tokenizer is none llama.cpp names that we know (qwen2, llama-bpe, smollm, gpt-2)`);
  const tokens = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types = new Int32Array(vocabSize).fill(TOKEN_UNUSED);
  for (const [text, id] of Object.entries(json.model.vocab)) if (id < vocabSize) [tokens[id], types[id]] = [text, TOKEN_NORMAL];
  for (const t of json.added_tokens ?? []) if (t.id < vocabSize) [tokens[t.id], types[t.id]] = [t.content, t.special ? TOKEN_CONTROL : TOKEN_USER_DEFINED];
  const config = readConfig(join(dirname(file), 'tokenizer_config.json'));
  const textOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : (v as { content?: string } | undefined)?.content);
  const eos = textOf(config.eos_token);
  const bos = textOf(config.bos_token);
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: pre }],
    ['tokenizer.ggml.tokens', { type: 'strings', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'i32s', value: types }],
    ['tokenizer.ggml.merges', { type: 'strings', value: json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)) }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: config.add_bos_token === true }],
  ];
  if (eos !== undefined && tokens.includes(eos)) out.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: tokens.indexOf(eos) }]);
  if (bos !== undefined && tokens.includes(bos)) out.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: tokens.indexOf(bos) }]);
  if (typeof config.chat_template === 'string') out.push(['tokenizer.chat_template', { type: 'string', value: config.chat_template }]);
  return out;
}

function readConfig(file: string): Record<string, unknown> {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> : {};
}
