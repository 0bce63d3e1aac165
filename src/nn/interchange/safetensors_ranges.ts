/**
 * --init from a safetensors file, read by ranges: a rank that keeps a range of a parameter (a ZeRO
 * shard) reads the bytes of that range only, never the whole file. Names and shapes are checked
 * against the model's from the header before anything is read (model_io.ts matchTensors), so the
 * model may be one whose parameters hold no values yet (a deferred build).
 *
 * A tensor stored transposed relative to ours (GPT-2's Conv1D weights) is read whole, one at a
 * time, as a range of our rows is a set of its columns.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CheckpointError } from '../checkpoint.js';
import type { ModelSpec } from '../models/index.js';
import type { Module } from '../module.js';
import { nameMapFor } from './hf_names.js';
import { matchTensors, transpose2d } from './model_io.js';
import { bytesPerElement, readSafetensorsHeader, type SafeEntry, toFloat32 } from './safetensors.js';

export class SafetensorsRanges {
  private readonly fd: number;
  private readonly entries: Map<string, SafeEntry>;
  private readonly dataStart: number;
  /** Our parameter or buffer name → the file's tensor name. */
  private readonly sources: Map<string, string>;
  private readonly transposed: (name: string) => boolean;

  /** Opens `file` and checks it holds every parameter and buffer of `model` with its shape. */
  constructor(private readonly file: string, model: Module, spec: ModelSpec) {
    try {
      this.fd = openSync(file, 'r');
    } catch (e) {
      throw new CheckpointError(file, `cannot read: ${(e as Error).message}`);
    }
    try {
      const header = readSafetensorsHeader(file, this.fd);
      this.entries = header.entries;
      this.dataStart = header.dataStart;
      this.sources = matchTensors(file, this.entries, model, spec);
      this.transposed = nameMapFor(spec).transposed;
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  /** Elements [from, to) of our parameter or buffer `name`, as our layout orders them, in float32. */
  read(name: string, shape: readonly number[], from: number, to: number): Float32Array {
    const ext = this.sources.get(name);
    if (ext === undefined) throw new CheckpointError(this.file, `holds no tensor for ${name}`);
    const entry = this.entries.get(ext)!;
    if (this.transposed(name)) return transpose2d(this.floats(ext, entry, 0, shape[0] * shape[1]), shape[1], shape[0]).subarray(from, to);
    return this.floats(ext, entry, from, to);
  }

  /** Elements [from, to) of the file's tensor, read from the file and widened to float32. */
  private floats(ext: string, entry: SafeEntry, from: number, to: number): Float32Array {
    const width = bytesPerElement(entry.dtype);
    const bytes = Buffer.alloc((to - from) * width);
    const at = this.dataStart + entry.begin + from * width;
    if (readSync(this.fd, bytes, 0, bytes.length, at) !== bytes.length) throw new CheckpointError(this.file, `tensor "${ext}": truncated`);
    return toFloat32(this.file, ext, { dtype: entry.dtype, shape: [to - from], bytes });
  }

  /** The model's buffers (batch-norm statistics: small), whole. */
  loadBuffers(model: Module): void {
    for (const [name, b] of model.namedBufferStorages()) b.write(this.read(name, [b.size], 0, b.size));
  }

  close(): void {
    closeSync(this.fd);
  }
}
