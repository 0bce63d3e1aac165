import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { CheckpointError } from '../checkpoint.js';
import { fromBf16Bits, fromF16Bits, toBf16Bits, toF16Bits } from '../../util/float_formats.js';

/**
 * Hugging Face's safetensors format (https://huggingface.co/docs/safetensors):
 *
 *   bytes 0..7   uint64 LE: length N of the header
 *   bytes 8..    N bytes of UTF-8 JSON: { name: { dtype, shape, data_offsets: [begin, end] }, ...,
 *                "__metadata__": { string: string } }, space-padded (we pad to 8-byte alignment)
 *   then         the raw little-endian tensor bytes; offsets are relative to the end of the header
 *
 * We write F32, BF16 and F16 (narrowed with round to nearest even: float_formats.ts) and read F32,
 * F64, F16 and BF16 (widened exactly to float32) plus the integer types (I64, I32, U32 (MLX's packed codes), ...: BatchNorm's
 * num_batches_tracked, position_ids), which callers may skip.
 */
export type SafeDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const BYTES: Record<SafeDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  /** The raw bytes (a view into the file's buffer). */
  bytes: Buffer;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** The floating-point dtypes we write. */
export type WriteDtype = 'F32' | 'BF16' | 'F16';

/** Tensors to write: float32 data (written as `dtype`, default F32), or an integer scalar (written as I64). */
export type WriteTensor = { shape: readonly number[]; data: Float32Array; dtype?: WriteDtype } | { shape: readonly number[]; int64: bigint[] };

/** float32 values as the little-endian bytes of `dtype`. */
function encodeFloats(data: Float32Array, dtype: WriteDtype): Buffer {
  if (dtype === 'F32') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const narrow = dtype === 'BF16' ? toBf16Bits : toF16Bits;
  const out = Buffer.alloc(2 * data.length);
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(narrow(data[i]), 2 * i);
  return out;
}

/** The dtype a tensor is written as and its byte length there. */
function writtenAs(t: WriteTensor): { dtype: SafeDtype; bytes: number } {
  const dtype = 'data' in t ? t.dtype ?? 'F32' : 'I64';
  return { dtype, bytes: ('data' in t ? t.data.length : t.int64.length) * BYTES[dtype] };
}

/** All of `bytes` at the file's current position (one write(2) moves at most ~2 GiB). */
function writeAll(fd: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, Math.min(bytes.length - at, 1 << 30));
}

/**
 * Writes the header, then each tensor's bytes as it is encoded: a file (a shard of up to 5 GB) is
 * never one buffer, which Node caps at 4 GiB, and BF16's narrowed copy lives one tensor at a time.
 */
export function writeSafetensors(file: string, tensors: [string, WriteTensor][], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const { dtype, bytes } = writtenAs(t);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const tmp = `${file}.tmp-${process.pid}`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    writeAll(fd, Buffer.concat([len, json]));
    for (const [, t] of tensors) writeAll(fd, 'data' in t ? encodeFloats(t.data, t.dtype ?? 'F32') : Buffer.from(new BigInt64Array(t.int64).buffer));
    closeSync(fd);
    fd = null;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new CheckpointError(file, `cannot write: ${(e as Error).message}`);
  }
}

/** Where a tensor lies in a file, as its header says (byte offsets from the start of the data). */
export interface SafeEntry {
  dtype: SafeDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A safetensors header: the tensors by name, the metadata, and where the data starts. */
export interface SafetensorsHeader {
  entries: Map<string, SafeEntry>;
  metadata: Record<string, string>;
  dataStart: number;
}

/**
 * Parses and validates a safetensors file; every problem names the file (and the tensor). Each
 * tensor is read into a buffer of its own: a shard of 2 GiB or more (Hugging Face writes up to 5 GB)
 * is never one read, which Node refuses past 2 GiB, nor one buffer, which it caps at 4 GiB.
 */
export function readSafetensors(file: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new CheckpointError(file, `cannot read: ${(e as Error).message}`);
  }
  try {
    const { entries, metadata, dataStart } = readSafetensorsHeader(file, fd);
    const tensors = new Map<string, SafeTensor>();
    for (const [name, e] of entries) tensors.set(name, { dtype: e.dtype, shape: e.shape, bytes: readAt(file, fd, dataStart + e.begin, e.end - e.begin) });
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

/** `length` bytes of the file from `position` (one read(2) moves at most ~2 GiB). */
function readAt(file: string, fd: number, position: number, length: number): Buffer {
  const out = Buffer.allocUnsafeSlow(length);  // its own ArrayBuffer at offset 0: typed-array views of it stay aligned
  for (let at = 0; at < length; ) {
    const n = readSync(fd, out, at, Math.min(length - at, 1 << 30), position + at);
    if (n === 0) throw new CheckpointError(file, `cannot read: the file ends at byte ${position + at}, inside a tensor`);
    at += n;
  }
  return out;
}

/**
 * Reads only the header of a safetensors file (the first bytes, not the tensors), validated
 * against the file's length: what a reader of ranges needs (safetensors_ranges.ts).
 */
export function readSafetensorsHeader(file: string, fd: number): SafetensorsHeader {
  const size = fstatSync(fd).size;
  const head = Buffer.alloc(Math.min(size, 8));
  readSync(fd, head, 0, head.length, 0);
  if (size < 8) return parseHeader(file, head, size);
  const n = Number(head.readBigUInt64LE(0));
  const all = Buffer.alloc(8 + Math.min(n, size - 8));
  readSync(fd, all, 0, all.length, 0);
  return parseHeader(file, all, size);
}

/** The header at the start of `data` (of a file of `fileLength` bytes), every entry checked to lie inside the file. */
function parseHeader(file: string, data: Buffer, fileLength: number): SafetensorsHeader {
  if (fileLength < 8) throw new CheckpointError(file, `not a safetensors file: ${fileLength} bytes, shorter than the 8-byte header length`);
  const n = data.readBigUInt64LE(0);
  if (n > BigInt(fileLength - 8)) throw new CheckpointError(file, `not a safetensors file or truncated: header length ${n} exceeds the ${fileLength - 8} bytes that follow`);
  let header: unknown;
  try {
    header = JSON.parse(data.subarray(8, 8 + Number(n)).toString('utf8'));
  } catch {
    throw new CheckpointError(file, 'safetensors header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CheckpointError(file, 'safetensors header is not a JSON object');
  const dataStart = 8 + Number(n);
  const entries = new Map<string, SafeEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    entries.set(name, parseEntry(file, name, entry, fileLength - dataStart));
  }
  return { entries, metadata, dataStart };
}

function parseEntry(file: string, name: string, entry: unknown, bodyLength: number): SafeEntry {
  const bad = (what: string): CheckpointError => new CheckpointError(file, `tensor "${name}": ${what}`);
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e !== 'object' || e === null) throw bad('entry is not an object');
  if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) throw bad(`unsupported dtype ${JSON.stringify(e.dtype)}`);
  const dtype = e.dtype as SafeDtype;
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`shape ${JSON.stringify(e.shape)} is not a list of sizes`);
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
    throw bad(`data_offsets ${JSON.stringify(offs)} is not [begin, end]`);
  }
  const shape = e.shape as number[];
  const [begin, end] = offs as number[];
  const expected = shape.reduce((a, d) => a * d, 1) * BYTES[dtype];
  if (end - begin !== expected) throw bad(`data_offsets span ${end - begin} bytes, but ${dtype} [${shape.join(', ')}] needs ${expected}`);
  if (end > bodyLength) throw bad(`data ends at byte ${end}, past the ${bodyLength} data bytes in the file (truncated?)`);
  return { dtype, shape, begin, end };
}

/** Bytes per element of a dtype. */
export function bytesPerElement(dtype: SafeDtype): number {
  return BYTES[dtype];
}

/** A floating-point tensor's values as float32 (copied). */
export function toFloat32(file: string, name: string, t: SafeTensor): Float32Array {
  const n = t.bytes.length / BYTES[t.dtype];
  const out = new Float32Array(n);
  const b = t.bytes;
  switch (t.dtype) {
    case 'F32': out.set(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))); break;
    case 'F64': for (let i = 0; i < n; i++) out[i] = b.readDoubleLE(8 * i); break;
    case 'F16': for (let i = 0; i < n; i++) out[i] = fromF16Bits(b.readUInt16LE(2 * i)); break;
    case 'BF16': for (let i = 0; i < n; i++) out[i] = fromBf16Bits(b.readUInt16LE(2 * i)); break;
    default: throw new CheckpointError(file, `tensor "${name}": dtype ${t.dtype} is not a floating-point type`);
  }
  return out;
}

/** Files named *.safetensors are written and read in this format; anything else is our own. */
export function isSafetensorsPath(file: string): boolean {
  return file.toLowerCase().endsWith('.safetensors');
}
