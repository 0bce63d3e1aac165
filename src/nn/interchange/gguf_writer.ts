/**
 * Writes GGUF files (version 3, little-endian: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md),
 * what llama.cpp and Ollama load: the magic, the metadata (typed key-value pairs), each tensor's
 * name, dimensions (innermost first), ggml type and offset, then the tensors' bytes, each aligned to
 * `general.alignment` (32). Written to a temporary name and renamed into place, so a reader never
 * sees half a file.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { CheckpointError } from '../checkpoint.js';

const ALIGNMENT = 32;
const enum ValueType { UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10 }

/** A metadata value and the GGUF type it is written as. */
export type GgufValue =
  | { readonly type: 'u32' | 'i32' | 'f32'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'i32s' | 'f32s'; readonly value: ArrayLike<number> };

export interface GgufTensorOut {
  readonly name: string;
  /** Outermost first (torch's order), as the reader gives it. */
  readonly shape: readonly number[];
  /** ggml's type id (0 F32, 1 F16, 30 BF16, 8 Q8_0 ...). */
  readonly ggmlType: number;
  /** The bytes' length, known before they are made (the header holds every tensor's offset). */
  readonly byteLength: number;
  /** The tensor's bytes, made when the writer reaches it: one tensor's bytes are held at a time. */
  bytes(): Promise<Uint8Array>;
}

/** Little-endian bytes appended as they come. */
class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;

  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }

  u64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }

  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }

  numbers(values: ArrayLike<number>, kind: 'i32' | 'f32'): void {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) {
      if (kind === 'i32') view.setInt32(i * 4, values[i], true);
      else view.setFloat32(i * 4, values[i], true);
    }
    this.push(b);
  }

  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    if (pad) this.push(new Uint8Array(pad));
  }

  concat(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

function writeValue(out: Bytes, v: GgufValue): void {
  switch (v.type) {
    case 'u32': out.u32(ValueType.UINT32); out.u32(v.value); break;
    case 'i32': out.u32(ValueType.INT32); out.numbers([v.value], 'i32'); break;
    case 'f32': out.u32(ValueType.FLOAT32); out.numbers([v.value], 'f32'); break;
    case 'bool': out.u32(ValueType.BOOL); out.push(Uint8Array.of(v.value ? 1 : 0)); break;
    case 'string': out.u32(ValueType.STRING); out.string(v.value); break;
    case 'strings':
      out.u32(ValueType.ARRAY); out.u32(ValueType.STRING); out.u64(v.value.length);
      for (const s of v.value) out.string(s);
      break;
    case 'i32s': case 'f32s':
      out.u32(ValueType.ARRAY); out.u32(v.type === 'i32s' ? ValueType.INT32 : ValueType.FLOAT32); out.u64(v.value.length);
      out.numbers(v.value, v.type === 'i32s' ? 'i32' : 'f32');
      break;
  }
}

/** The header: magic, version, counts, metadata and tensor infos, padded to the data's alignment. */
function header(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorOut[]): Uint8Array {
  const out = new Bytes();
  out.push(Buffer.from('GGUF', 'latin1'));
  out.u32(3);
  out.u64(tensors.length);
  out.u64(metadata.size + 1);
  out.string('general.alignment');
  writeValue(out, { type: 'u32', value: ALIGNMENT });
  for (const [key, value] of metadata) {
    out.string(key);
    writeValue(out, value);
  }
  let offset = 0;
  for (const t of tensors) {
    out.string(t.name);
    out.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) out.u64(d);
    out.u32(t.ggmlType);
    out.u64(offset);
    offset += t.byteLength + ((ALIGNMENT - (t.byteLength % ALIGNMENT)) % ALIGNMENT);
  }
  out.padTo(ALIGNMENT);
  return out.concat();
}

/** Writes `path`: the metadata (general.alignment is ours to write) and the tensors in order, each made as it is written. */
export async function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorOut[]): Promise<void> {
  if (metadata.has('general.alignment')) throw new CheckpointError(path, 'general.alignment is the writer\'s to set');
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, header(metadata, tensors));
    const zeros = new Uint8Array(ALIGNMENT);
    for (const t of tensors) {
      const bytes = await t.bytes();
      if (bytes.length !== t.byteLength) throw new Error(`${t.name} has ${bytes.length} bytes, its header entry says ${t.byteLength}`);
      writeSync(fd, bytes);
      const pad = (ALIGNMENT - (bytes.length % ALIGNMENT)) % ALIGNMENT;
      if (pad) writeSync(fd, zeros, 0, pad);
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
    throw new CheckpointError(path, `cannot write the GGUF file: ${(e as Error).message}`);
  }
}
