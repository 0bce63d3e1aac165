/**
 * A GGUF file's header — its metadata (typed key-value pairs) and tensor infos — read synchronously
 * (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md, versions 2 and 3, little-endian).
 *
 * Ours rather than `@huggingface/gguf`'s parser: that one reads a local file asynchronously, in 2 MB
 * chunks appended to one growing buffer, and copies each string's bytes into an ArrayBuffer of its
 * own before decoding it; reading a Qwen2.5 file's header (151,936 tokens and 151,387 merges, 12 MB
 * of strings) grew the process's anonymous memory by 65 MB with it, 40 MB with this reader, held
 * resident beside the weights (issue 45's "resident ≤ file + KV cache + 10 %"). Here the header is
 * read into one buffer, each string decoded straight out of it, and every count checked against the
 * bytes left before anything is made of it, so a corrupt header is refused by name, never allocated.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** A metadata value as read: integers up to 32 bits, floats and bools as JS values; 64-bit integers as bigint. */
export type GgufMetadataValue = string | number | bigint | boolean | GgufMetadataValue[];

export interface GgufRawTensorInfo {
  readonly name: string;
  /** ggml's order: the innermost (a row's length) first. */
  readonly dims: readonly number[];
  /** The ggml type id. */
  readonly type: number;
  /** From the start of the tensor data. */
  readonly offset: number;
}

export interface GgufHeader {
  readonly version: number;
  readonly metadata: Record<string, GgufMetadataValue>;
  readonly tensors: readonly GgufRawTensorInfo[];
  /** Where the tensor data starts: the header's end, padded to general.alignment (32 unless it says). */
  readonly dataOffset: number;
  readonly fileSize: number;
}

/** A header's fault: the message says what, the caller names the file. */
export class GgufHeaderError extends Error {}

const MAGIC = 0x46554747; // "GGUF", little-endian
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_DEPTH = 4; // arrays of arrays

/** Bytes of a scalar value type (ids 0–12 but 8, a string, and 9, an array). */
const SCALAR_BYTES: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Reads `path`'s header. Throws GgufHeaderError for a file that is not one we read. */
export function readGgufHeaderSync(path: string): GgufHeader {
  const fd = openSync(path, 'r');
  try {
    const r = new HeaderReader(fd, fstatSync(fd).size);
    return readHeader(r);
  } finally {
    closeSync(fd);
  }
}

function readHeader(r: HeaderReader): GgufHeader {
  if (r.fileSize < 24 || r.u32() !== MAGIC) throw new GgufHeaderError('no GGUF magic');
  const version = r.u32();
  if (version > 0xffff && (version & 0xffff) === 0) throw new GgufHeaderError('a big-endian file; we read little-endian ones');
  if (version !== 2 && version !== 3) throw new GgufHeaderError(`GGUF version ${version}; we read versions 2 and 3`);
  const tensorCount = r.count('the tensor count', 8 + 4 + 8 + 4 + 8);
  const kvCount = r.count('the metadata count', 8 + 4);
  // Without a prototype: a key is only ever the file's own (a "__proto__" key is a key like any other).
  const metadata = Object.create(null) as Record<string, GgufMetadataValue>;
  for (let i = 0; i < kvCount; i++) {
    const key = r.string();
    if (Object.hasOwn(metadata, key)) throw new GgufHeaderError(`metadata ${key} is given twice`);
    metadata[key] = r.value(r.u32(), key, 0);
  }
  const tensors: GgufRawTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) tensors.push(tensorInfo(r));
  const alignment = metadata['general.alignment'] ?? 32;
  if (typeof alignment !== 'number' || alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new GgufHeaderError(`general.alignment ${String(alignment)} is not a power of two`);
  const dataOffset = Math.ceil(r.position / alignment) * alignment;
  return { version, metadata, tensors, dataOffset, fileSize: r.fileSize };
}

function tensorInfo(r: HeaderReader): GgufRawTensorInfo {
  const name = r.string();
  const nDims = r.u32();
  if (nDims < 1 || nDims > MAX_DIMS) throw new GgufHeaderError(`tensor ${name} has ${nDims} dimensions (1 to ${MAX_DIMS})`);
  const dims: number[] = [];
  for (let d = 0; d < nDims; d++) dims.push(r.size(`tensor ${name}'s dimension ${d}`));
  const type = r.u32();
  return { name, dims, type, offset: r.size(`tensor ${name}'s offset`) };
}

/**
 * The header's bytes, read from the file as far as asked: one buffer, doubled when a value runs
 * past it (a Qwen2.5 file's header is about 6 MB).
 */
class HeaderReader {
  private buf = Buffer.alloc(0);
  position = 0;

  constructor(private readonly fd: number, readonly fileSize: number) {}

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.position);
    this.position += 4;
    return v;
  }

  /** A u64 that must be a safe integer no larger than the file (a size, an offset, a dimension). */
  size(what: string): number {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.position);
    this.position += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufHeaderError(`${what} is ${v}, past any file`);
    return Number(v);
  }

  /** A u64 count of items each at least `minBytes` long, refused when the file's rest cannot hold them. */
  count(what: string, minBytes: number): number {
    const n = this.size(what);
    if (n * minBytes > this.fileSize - this.position) throw new GgufHeaderError(`${what} is ${n}, which runs past the file's end (${this.fileSize} bytes)`);
    return n;
  }

  string(): string {
    const length = this.count('a string\'s length', 1);
    this.need(length);
    const s = this.buf.toString('utf8', this.position, this.position + length);
    this.position += length;
    return s;
  }

  /** A value of type `type` (key names it in an error); depth counts enclosing arrays. */
  value(type: number, key: string, depth: number): GgufMetadataValue {
    if (type === 8) return this.string();
    if (type === 9) return this.array(key, depth);
    const bytes = SCALAR_BYTES[type];
    if (bytes === undefined) throw new GgufHeaderError(`metadata ${key} has value type ${type}, not one GGUF defines`);
    this.need(bytes);
    const at = this.position;
    this.position += bytes;
    switch (type) {
      case 0: return this.buf.readUInt8(at);
      case 1: return this.buf.readInt8(at);
      case 2: return this.buf.readUInt16LE(at);
      case 3: return this.buf.readInt16LE(at);
      case 4: return this.buf.readUInt32LE(at);
      case 5: return this.buf.readInt32LE(at);
      case 6: return this.buf.readFloatLE(at);
      case 7: return this.buf.readUInt8(at) !== 0;
      case 10: return this.buf.readBigUInt64LE(at);
      case 11: return this.buf.readBigInt64LE(at);
      default: return this.buf.readDoubleLE(at);
    }
  }

  private array(key: string, depth: number): GgufMetadataValue[] {
    if (depth >= MAX_DEPTH) throw new GgufHeaderError(`metadata ${key} nests arrays ${MAX_DEPTH} deep`);
    const type = this.u32();
    if (SCALAR_BYTES[type] === undefined && type !== 8 && type !== 9) throw new GgufHeaderError(`metadata ${key} is an array of value type ${type}, not one GGUF defines`);
    const n = this.count(`metadata ${key}'s length`, SCALAR_BYTES[type] ?? 8);
    const out = new Array<GgufMetadataValue>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(type, key, depth + 1);
    return out;
  }

  /** Makes sure `n` bytes from the position are in the buffer, reading more of the file. */
  private need(n: number): void {
    const end = this.position + n;
    if (end <= this.buf.length) return;
    if (end > this.fileSize) throw new GgufHeaderError(`the header runs past the file's end (${this.fileSize} bytes)`);
    const grown = Buffer.allocUnsafe(Math.min(this.fileSize, Math.max(end, 2 * this.buf.length, 1 << 20)));
    this.buf.copy(grown);
    for (let done = this.buf.length; done < grown.length;) {
      const read = readSync(this.fd, grown, done, grown.length - done, done);
      if (read === 0) throw new GgufHeaderError(`the file ended at ${done} bytes, before its stated ${this.fileSize}`);
      done += read;
    }
    this.buf = grown;
  }
}
