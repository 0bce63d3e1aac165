/**
 * A Llama-family model from a GGUF file (gguf.ts): the spec from its metadata, each tensor by
 * llama.cpp's name put where Hugging Face's name puts it in our model (models/llama.ts), a quantized
 * tensor held in its blocks (a frozen weight, as --quantize leaves one), a float one widened.
 *
 * llama.cpp's converter reorders the rows of q and k for the `llama` architecture (each head's two
 * rotary halves interleaved, llama.cpp's rope on adjacent pairs; convert_hf_to_gguf.py `permute`);
 * Qwen2 and Qwen3 keep Hugging Face's order (rope over halves). Reading undoes the reorder, row by
 * row — a row is whole blocks, so a quantized matrix moves without decoding.
 */
import { deviceMemory, CPU } from '../../tensor/storage.js';
import { repackForProducts } from '../../tensor/dispatch.js';
import { HugePageBytes } from '../../tensor/huge_page_block.js';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { withoutRandomInit } from '../../tensor/init_scope.js';
import { heldAsF16Blocks } from '../../tensor/quant/f16.js';
import { type QuantType, quantBytes } from '../../tensor/quant/formats.js';
import { CheckpointError } from '../checkpoint.js';
import { type LlamaSpec, createModel } from '../models/index.js';
import type { RopeScaling } from '../models/llama.js';
import { inverseFrequencies, llama3Frequencies } from '../layers/rotary.js';
import type { Module } from '../module.js';
import { type GgufFile, type GgufValues, type MetadataValue, ggufMeta, readGgufTensor } from './gguf.js';
import { reorderRopeRows, reorderRopeRowsInPlace } from './gguf_rope_rows.js';

const ARCHITECTURES = ['llama', 'qwen2', 'qwen3'] as const;
type GgufArchitecture = (typeof ARCHITECTURES)[number];

/** llama.cpp's per-layer tensor names → the layer's Hugging Face module path. */
const LAYER_NAMES: Readonly<Record<string, string>> = {
  attn_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm',
  attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
};
const TOP_NAMES: Readonly<Record<string, string>> = {
  'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight',
};

/** Our parameter name of a GGUF tensor, or null for one we do not know. */
export function parameterNameOf(ggufName: string): string | null {
  if (Object.hasOwn(TOP_NAMES, ggufName)) return TOP_NAMES[ggufName];
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(ggufName);
  if (!m || !Object.hasOwn(LAYER_NAMES, m[2])) return null;
  return `model.layers.${m[1]}.${LAYER_NAMES[m[2]]}.${m[3]}`;
}

/** The model a GGUF file's metadata describes (the Llama family: llama, qwen2, qwen3). */
export function specFromGguf(file: GgufFile): LlamaSpec {
  const arch = file.architecture;
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new CheckpointError(file.path, `general.architecture is ${arch}; we read ${ARCHITECTURES.join(', ')} (the Llama family)`);
  }
  const meta = <T extends MetadataValue>(key: string, fallback?: T): T => ggufMeta<T>(file, `${arch}.${key}`, fallback);
  const embed = file.tensors.get('token_embd.weight');
  if (!embed) throw new CheckpointError(file.path, 'has no token_embd.weight');
  const [vocabSize, width] = embed.shape;
  const heads = meta<number>('attention.head_count');
  const headDim = meta<number>('attention.key_length', width / heads);
  const ropeTheta = shortestDecimal(meta<number>('rope.freq_base', 10000));
  return {
    type: 'llama', modelType: arch as GgufArchitecture, vocabSize, width,
    context: meta<number>('context_length'), layers: meta<number>('block_count'),
    intermediate: meta<number>('feed_forward_length'), heads,
    kvHeads: meta<number>('attention.head_count_kv', heads),
    headDim, ropeTheta, ropeScaling: ropeScalingOf(file, headDim, ropeTheta),
    rmsEps: shortestDecimal(meta<number>('attention.layer_norm_rms_epsilon')),
    tieEmbeddings: !file.tensors.has('output.weight'),
    qkvBias: file.tensors.has('blk.0.attn_q.bias'),
    qkNorm: file.tensors.has('blk.0.attn_q_norm.weight'),
    dropout: 0,
  };
}

/**
 * The model a GGUF file holds: every parameter read from its tensor (a missing one, or a tensor
 * the model has no place for, refused by name), quantized ones frozen in their blocks. `spec` is
 * the file's (a run may change how it trains, e.g. its dropout, never its shape).
 */
export function loadGgufModel(file: GgufFile, spec: LlamaSpec = specFromGguf(file), o: { hugePages?: boolean; repack?: boolean } = {}): { model: Module; spec: LlamaSpec } {
  // Built deferred: a float32 copy of every quantized weight, written and then dropped, once took
  // 538 MB of a SmolLM2-135M Q4_0 file's 673 MB peak (the allocator keeps what it had). And without
  // random fills: the file writes every value, and moving the generator past 8B normals takes minutes.
  const model = buildDeferred(() => withoutRandomInit(() => createModel(spec, 0)));
  const params = model.namedParameters();
  const sources = ggufSources(file, spec, params);
  const formats = ggufFormats(file, sources, { f16Blocks: o.hugePages });
  model.freeze((n) => formats.has(n));
  const places = o.hugePages ? HugePageBytes.on(CPU, [...formats.keys()].reduce((n, name) => n + HugePageBytes.span(file.tensors.get(sources.get(name)!)!.bytes), 0)) : null;
  for (const [name, p] of params) {
    // Quantized blocks as views of the file mapped read-only where the host can (they are frozen),
    // or read into huge pages (hugePages: a generator's, whose decode streams them every token; its
    // F16 matrices kept float16 there too).
    const ggufName = sources.get(name)!;
    const [type, bytes] = [formats.get(name), file.tensors.get(ggufName)!.bytes];
    // Without huge pages an F16 matrix still stays f16 (the estimate counted it so), in bytes of its own.
    const into = places && type ? places.take(bytes) : type === 'f16' ? new Uint8Array(bytes) : undefined;
    const values = readGgufParameter(file, spec, ggufName, places === null, into);
    if ('values' in values) p.bind(deviceMemory(CPU).fromHost(values.values), null);
    else p.holdFrozen(deviceMemory(CPU).fromHost(values.blocks, heldFormat(values.type, values.blocks, p.shape, o.repack === true && into !== undefined)));
  }
  return { model, spec };
}

/**
 * The format a quantized matrix is held in: with `repack` (a generator's load, its blocks in memory
 * of its own) the layout the cpu backend's products read fastest, repacked in place (q4_0x8,
 * q8_0x8, q5_0x8, q4_kx8, q6_kx8: Q4_0's, Q8_0's, Q5_0's, Q4_K's and Q6_K's rows interleaved by eight
 * where the native kernels read them); else as the file has it.
 */
function heldFormat(type: QuantType, blocks: Uint8Array, shape: readonly number[], repack: boolean): QuantType {
  return repack && shape.length === 2 ? repackForProducts(type, blocks, shape[0], shape[1]) : type;
}

/**
 * The GGUF tensor each of the model's parameters (`params`, by our name) is read from, its shape
 * checked; a parameter the file lacks, or a tensor the model has no place for, is refused by name.
 */
export function ggufSources(file: GgufFile, spec: LlamaSpec, params: Iterable<readonly [string, { readonly shape: readonly number[] }]>): Map<string, string> {
  const inFile = new Map<string, string>();
  for (const name of file.tensors.keys()) {
    if (name === 'rope_freqs.weight') continue; // in the spec (ropeScalingOf)
    const ours = parameterNameOf(name);
    if (ours === null) throw new CheckpointError(file.path, `tensor ${name} has no place in a ${spec.modelType} model`);
    inFile.set(ours, name);
  }
  const sources = new Map<string, string>();
  const missing: string[] = [];
  for (const [name, p] of params) {
    const ggufName = inFile.get(name);
    if (ggufName === undefined) {
      missing.push(name);
      continue;
    }
    const info = file.tensors.get(ggufName)!;
    if (info.shape.join() !== p.shape.join()) throw new CheckpointError(file.path, `tensor ${ggufName} is [${info.shape}], the model's ${name} is [${p.shape}]`);
    sources.set(name, ggufName);
  }
  if (missing.length > 0) throw new CheckpointError(file.path, `lacks ${missing.length} tensors the model needs: ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}`);
  return sources;
}

/**
 * The parameters (of `sources`, ggufSources') the file holds quantized, and each one's format (F16
 * and BF16 are widened to float32: absent); with `f16Blocks` (a generator's load) an F16 matrix
 * whose rows are whole f16 blocks too, as `f16`, which it then holds at 2 bytes a weight.
 */
export function ggufFormats(file: GgufFile, sources: ReadonlyMap<string, string>, o: { f16Blocks?: boolean } = {}): Map<string, QuantType> {
  const formats = new Map<string, QuantType>();
  for (const [name, ggufName] of sources) {
    const { type, shape } = file.tensors.get(ggufName)!;
    if (type !== 'F32' && type !== 'F16' && type !== 'BF16') formats.set(name, type);
    else if (o.f16Blocks && type === 'F16' && heldAsF16Blocks(shape)) formats.set(name, 'f16');
  }
  return formats;
}

/**
 * One tensor's values as our parameter holds them: floats widened, a quantized one's blocks, q and k
 * rows in Hugging Face's order; a quantized one read into `into` where given (readGgufTensor).
 */
export function readGgufParameter(file: GgufFile, spec: LlamaSpec, ggufName: string, shared = false, into?: Uint8Array): GgufValues {
  const shape = file.tensors.get(ggufName)!.shape;
  // Rows put back in order in the array read (its own, or into), a mapped file's in a copy.
  return unpermuted(spec, ggufName, shape, readGgufTensor(file, ggufName, shared, into), !shared || into !== undefined);
}

/**
 * Llama 3's rotary scaling, which llama.cpp's converter stores as the factor each frequency is
 * divided by (rope_freqs.weight), not as its parameters: recognised by finding the parameters
 * (the factor, the low and high frequency factors and the original context, over the values Llama
 * 3.1-3.3 use and their neighbours) whose factors are the file's; refused by name when none is.
 */
function ropeScalingOf(file: GgufFile, headDim: number, theta: number): RopeScaling | null {
  if (!file.tensors.has('rope_freqs.weight')) return null;
  const stored = readGgufTensor(file, 'rope_freqs.weight');
  if (!('values' in stored) || stored.values.length !== headDim / 2) throw new CheckpointError(file.path, `rope_freqs.weight is not ${headDim / 2} float factors`);
  const inv = inverseFrequencies(headDim, theta);
  const factor = stored.values.reduce((a, b) => Math.max(a, b), 1);
  for (const originalContext of [8192, 4096, 2048, 16384, 32768, 65536, 131072]) {
    for (const [lowFreqFactor, highFreqFactor] of [[1, 4], [1, 2], [2, 4], [1, 8], [2, 8]]) {
      const s = { type: 'llama3' as const, factor, lowFreqFactor, highFreqFactor, originalContext };
      const scaled = llama3Frequencies(inv, s);
      if (scaled.every((f, i) => Math.abs(inv[i] / f - stored.values[i]) <= 1e-4 * stored.values[i])) return s;
    }
  }
  throw new CheckpointError(file.path, 'rope_freqs.weight holds rotary factors that are not Llama 3\'s scaling with any parameters we try');
}

/**
 * A float32 the metadata holds as the shortest decimal it rounds from (1e-5, not 9.99999974e-6):
 * the value config.json had before the converter narrowed it.
 */
function shortestDecimal(x: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

/** q and k of the `llama` architecture back in Hugging Face's row order (the module comment has why). */
function unpermuted(spec: LlamaSpec, ggufName: string, shape: readonly number[], v: GgufValues, inPlace: boolean): GgufValues {
  const m = /^blk\.\d+\.attn_(q|k)\.(weight|bias)$/.exec(ggufName);
  if (spec.modelType !== 'llama' || !m) return v;
  const heads = m[1] === 'q' ? spec.heads : spec.kvHeads;
  const cols = shape.length === 2 ? shape[1] : 1;
  if ('values' in v) return { type: 'float32', values: reorderRopeRowsInPlace(v.values, heads, cols, 'halves') };
  const reorder = inPlace ? reorderRopeRowsInPlace : reorderRopeRows;
  return { type: v.type, blocks: reorder(v.blocks, heads, quantBytes(v.type, 1, cols), 'halves') };
}

