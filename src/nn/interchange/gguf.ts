/**
 * GGUF files, as llama.cpp and Ollama keep models (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
 * The header — metadata and tensor infos — is read by gguf_header.ts (synchronously, its strings
 * straight out of one buffer); the tensor bytes are read here: each tensor's own bytes from its
 * offset, a quantized one kept in its blocks (tensor/quant/formats.ts), never widened to a dense
 * copy. `@huggingface/gguf` names the ggml types we do not read.
 *
 * Shapes: ggml lists a tensor's dimensions innermost first (ne[0] is a row's length); we give them
 * outermost first, as torch and safetensors do, so a weight is [out, in] in both.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { GGMLQuantizationType } from '@huggingface/gguf';
import { type QuantType, quantBytes, quantFormatOfGgml } from '../../tensor/quant/formats.js';
import { fromBf16Bits, fromF16Bits } from '../../util/float_formats.js';
import { CheckpointError } from '../checkpoint.js';
import { mapFileReadOnly } from './file_map.js';
import { type GgufHeader, GgufHeaderError, type GgufMetadataValue, readGgufHeaderSync } from './gguf_header.js';

/** A metadata value as read (gguf_header.ts). */
export type MetadataValue = GgufMetadataValue;

/** A tensor's element type in a GGUF file, as we hold it: a float type, or a quantized format. */
export type GgufType = 'F32' | 'F16' | 'BF16' | QuantType;

const FLOAT_TYPES: ReadonlyMap<number, GgufType> = new Map([[0, 'F32'], [1, 'F16'], [30, 'BF16']]);
const FLOAT_BYTES: Readonly<Record<string, number>> = { F32: 4, F16: 2, BF16: 2 };

export interface GgufTensorInfo {
  readonly name: string;
  /** Outermost first (torch's order). */
  readonly shape: readonly number[];
  readonly type: GgufType;
  /** Where its bytes start in the file, and how many. */
  readonly offset: number;
  readonly bytes: number;
}

export interface GgufFile {
  readonly path: string;
  readonly metadata: Readonly<Record<string, MetadataValue>>;
  /** In the file's order. */
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  /** general.architecture ('llama', 'qwen2', ...). */
  readonly architecture: string;
}

/** The values a tensor holds: float32 values, or a quantized format's blocks. */
export type GgufValues = { readonly type: 'float32'; readonly values: Float32Array } | { readonly type: QuantType; readonly blocks: Uint8Array };

/** Whether `path` is a GGUF file: its first four bytes are the magic "GGUF". */
export function isGgufFile(path: string): boolean {
  const head = Buffer.alloc(4);
  let fd: number;
  try {
    if (!statSync(path).isFile()) return false;
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === 'GGUF';
  } finally {
    closeSync(fd);
  }
}

/** Headers this process has read, by path (readGgufHeader, ggufHeaderRead): a command's several readers share one. */
const headersRead = new Map<string, GgufFile>();

/** The header of `path` this process read (readGgufHeader), or read now and kept: a command's synchronous readers (`train --init X.gguf`: the model's spec, its tokenizer). */
export function ggufHeaderRead(path: string): GgufFile {
  let file = headersRead.get(path);
  if (!file) headersRead.set(path, (file = readGgufFile(path)));
  return file;
}

/** Reads a GGUF file's header (metadata and every tensor's name, shape, type and place) and keeps it for ggufHeaderRead. */
export async function readGgufHeader(path: string): Promise<GgufFile> {
  const file = readGgufFile(path);
  headersRead.set(path, file);
  return file;
}

/**
 * Reads a GGUF file's header, kept by nobody but the caller: a generator's load, after which its
 * metadata (a Qwen2.5 file's 303,323 token and merge strings, 12 MB) can go once the tokenizer is made.
 */
export function readGgufFile(path: string): GgufFile {
  let header: GgufHeader;
  try {
    header = readGgufHeaderSync(path);
  } catch (e) {
    if (e instanceof GgufHeaderError) throw new CheckpointError(path, `not a GGUF file we can read (${e.message})`);
    throw e;
  }
  const { fileSize: size, dataOffset: base } = header;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of header.tensors) {
    if (tensors.has(t.name)) throw new CheckpointError(path, `tensor ${t.name} is listed twice`);
    const shape = [...t.dims].reverse();
    const type = ggufType(path, t.name, t.type);
    const cols = shape[shape.length - 1] ?? 1;
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const bytes = type in FLOAT_BYTES ? rows * cols * FLOAT_BYTES[type] : quantBytes(type as QuantType, rows, cols, `${path}: tensor ${t.name}'s row`);
    const offset = base + t.offset;
    if (offset + bytes > size) throw new CheckpointError(path, `tensor ${t.name} (${bytes} bytes at ${offset}) runs past the file's end (${size} bytes): the file is truncated`);
    tensors.set(t.name, { name: t.name, shape, type, offset, bytes });
  }
  const architecture = header.metadata['general.architecture'];
  if (typeof architecture !== 'string') throw new CheckpointError(path, `no general.architecture in the metadata`);
  return { path, metadata: header.metadata, tensors, architecture };
}

/**
 * One tensor's values: F32, F16 and BF16 widened (exactly) to float32; a quantized one as its
 * blocks. `shared`: a quantized tensor's blocks are a view of the file mapped read-only where the
 * host can map it (frozen weights: no copy in this process, one in the page cache for every
 * process of the host); otherwise they are read, into `into` where given (its length the tensor's
 * bytes: a place in a block of huge pages). An F16 tensor read into a place stays float16: the
 * `f16` format's blocks (a generator's load: 2 bytes a weight, widened by the products).
 */
export function readGgufTensor(file: GgufFile, name: string, shared = false, into?: Uint8Array): GgufValues {
  const info = file.tensors.get(name);
  if (!info) throw new CheckpointError(file.path, `no tensor named ${name}`);
  if (into && info.type === 'F16') return { type: 'f16', blocks: readBytes(file.path, info.offset, info.bytes, into) };
  const isFloat = info.type === 'F32' || info.type === 'F16' || info.type === 'BF16';
  // One mapping a tensor (file_map.ts): null where the host cannot map.
  const map = shared && !isFloat ? mapFileReadOnly(file.path, info.offset, info.bytes) : null;
  if (map) return { type: info.type as QuantType, blocks: map };
  const raw = readBytes(file.path, info.offset, info.bytes, isFloat ? undefined : into);
  switch (info.type) {
    case 'F32': return { type: 'float32', values: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4) };
    case 'F16': return { type: 'float32', values: widen(raw, fromF16Bits) };
    case 'BF16': return { type: 'float32', values: widen(raw, fromBf16Bits) };
    default: return { type: info.type, blocks: raw };
  }
}

/** A metadata value by key, refused by name when absent (`fallback` serves an optional one). */
export function ggufMeta<T extends MetadataValue>(file: GgufFile, key: string, fallback?: T): T {
  const v = file.metadata[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new CheckpointError(file.path, `the metadata has no ${key}`);
  }
  return (typeof v === 'bigint' ? Number(v) : v) as T;
}

function ggufType(path: string, tensor: string, id: number): GgufType {
  const float = FLOAT_TYPES.get(id);
  if (float) return float;
  const q = quantFormatOfGgml(id);
  if (q) return q.type;
  const name = GGMLQuantizationType[id] ?? `type ${id}`;
  throw new CheckpointError(path, `tensor ${tensor} is ${name}, which we do not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)`);
}

/** 16-bit floats' little-endian bytes as float32 values (exact: both widen). */
function widen(raw: Uint8Array, fromBits: (bits: number) => number): Float32Array {
  const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromBits(bits[i]);
  return out;
}

/** `length` bytes from `offset`, in a buffer of their own (aligned for a Float32Array view). */
function readBytes(path: string, offset: number, length: number, into?: Uint8Array): Uint8Array {
  if (into && into.length !== length) throw new RangeError(`readBytes: a place of ${into.length} bytes for ${length}`);
  const out = into ?? new Uint8Array(new ArrayBuffer(length));
  const fd = openSync(path, 'r');
  try {
    for (let done = 0; done < length;) {
      const n = readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw new CheckpointError(path, `ended before ${length} bytes at ${offset}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
