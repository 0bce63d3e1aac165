/**
 * --init from a safetensors file or a Hugging Face folder's shards, read by ranges: a rank that
 * keeps a range of a parameter (a ZeRO shard) reads the bytes of that range only, never the whole
 * file. Names and shapes are checked
 * against the model's from the header before anything is read (model_io.ts matchTensors), so the
 * model may be one whose parameters hold no values yet (a deferred build).
 *
 * A tensor stored transposed relative to ours (GPT-2's Conv1D weights) is read whole, one at a
 * time, as a range of our rows is a set of its columns.
 */
import { readSync } from 'node:fs';
import { CheckpointError } from '../checkpoint.js';
import { mapFileReadOnly } from './file_map.js';
import type { ModelSpec } from '../models/index.js';
import type { Module } from '../module.js';
import { nameMapFor } from './hf_names.js';
import { matchTensors, transpose2d } from './model_io.js';
import { bytesPerElement, toFloat32 } from './safetensors.js';
import { type LocatedTensor, SafetensorsEntries } from './safetensors_entries.js';

export class SafetensorsRanges {
  private readonly tensors: SafetensorsEntries;
  /** Our parameter or buffer name → the file's tensor name. */
  private readonly sources: Map<string, string>;
  private readonly transposed: (name: string) => boolean;

  /**
   * Opens `source` (a .safetensors file, or a Hugging Face folder: its model.safetensors or every
   * shard its index names) and checks it holds every parameter and buffer of `model` with its shape.
   */
  constructor(private readonly file: string, model: Module, spec: ModelSpec) {
    this.tensors = new SafetensorsEntries(file);
    try {
      this.sources = matchTensors(file, this.tensors.entries, model, spec);
      this.transposed = nameMapFor(spec).transposed;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Elements [from, to) of our parameter or buffer `name`, as our layout orders them, in float32. */
  read(name: string, shape: readonly number[], from: number, to: number): Float32Array {
    const ext = this.sources.get(name);
    if (ext === undefined) throw new CheckpointError(this.file, `holds no tensor for ${name}`);
    const entry = this.tensors.entries.get(ext)!;
    if (this.transposed(name)) return transpose2d(this.floats(ext, entry, 0, shape[0] * shape[1]), shape[1], shape[0]).subarray(from, to);
    return this.floats(ext, entry, from, to);
  }

  /**
   * Our parameter `name` as the file holds it in BF16, its 16-bit patterns: the file's bytes mapped
   * read-only where the host can map them at an even address (no copy; the page cache's pages,
   * shared by every process of the host that maps the file), else read. Null where the file holds
   * it in another dtype or transposed (a GPT-2 Conv1D): read() widens those.
   */
  bf16Bits(name: string): Uint16Array | null {
    return this.halfBits(name, 'BF16');
  }

  /** The same for a tensor the file holds in F16 (IEEE float16 patterns). */
  f16Bits(name: string): Uint16Array | null {
    return this.halfBits(name, 'F16');
  }

  private halfBits(name: string, dtype: 'BF16' | 'F16'): Uint16Array | null {
    const ext = this.sources.get(name);
    const entry = ext === undefined ? undefined : this.tensors.entries.get(ext);
    if (entry === undefined || entry.dtype !== dtype || this.transposed(name)) return null;
    const [at, length] = [entry.dataStart + entry.begin, entry.end - entry.begin];
    const mapped = at % 2 === 0 ? mapFileReadOnly(entry.path, at, length) : null;
    if (mapped && mapped.byteOffset % 2 === 0) return new Uint16Array(mapped.buffer, mapped.byteOffset, length / 2);
    const bits = new Uint16Array(length / 2);
    if (readSync(entry.fd, new Uint8Array(bits.buffer), 0, length, at) !== length) throw new CheckpointError(this.file, `tensor "${ext}": truncated`);
    return bits;
  }

  /** Elements [from, to) of the file's tensor, read from its file and widened to float32. */
  private floats(ext: string, entry: LocatedTensor, from: number, to: number): Float32Array {
    const width = bytesPerElement(entry.dtype);
    const bytes = this.tensors.bytes(ext, from * width, to * width);
    return toFloat32(this.file, ext, { dtype: entry.dtype, shape: [to - from], bytes });
  }

  /** The model's buffers (batch-norm statistics: small), whole. */
  loadBuffers(model: Module): void {
    for (const [name, b] of model.namedBufferStorages()) b.write(this.read(name, [b.size], 0, b.size));
  }

  close(): void {
    this.tensors.close();
  }
}
