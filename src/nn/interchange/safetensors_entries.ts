/**
 * The tensors of a safetensors file, or of a Hugging Face folder's shards, known by their headers
 * only: where each lies (its shard, dtype, shape and bytes), its bytes read when asked, never the
 * whole file. A tensor in two shards, or one the index places in a shard that lacks it, is refused
 * by name. Readers by ranges (safetensors_ranges.ts) and an MLX folder's stages (mlx_folder.ts) open one.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CheckpointError } from '../checkpoint.js';
import { checkWeightMap, folderWeights, isFolder } from './hf_weights.js';
import { type SafeEntry, readSafetensorsHeader } from './safetensors.js';

/** A tensor's entry in the file (one shard of a folder) that holds it. */
export interface LocatedTensor extends SafeEntry {
  fd: number;
  /** Where the shard's data starts (its header's end). */
  dataStart: number;
  /** The shard's path. */
  path: string;
}

export class SafetensorsEntries {
  readonly entries = new Map<string, LocatedTensor>();
  private readonly fds: number[] = [];

  /** Opens `source` (a .safetensors file, or a folder: its model.safetensors or every shard its index names) and reads the headers. */
  constructor(readonly source: string) {
    try {
      const weights = isFolder(source) ? folderWeights(source) : { files: [source] };
      const home = new Map<string, string>();
      for (const shard of weights.files) this.openShard(shard, home);
      if (weights.weightMap) checkWeightMap(source, weights.weightMap, home);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private openShard(shard: string, home: Map<string, string>): void {
    let fd: number;
    try {
      fd = openSync(shard, 'r');
    } catch (e) {
      throw new CheckpointError(shard, `cannot read: ${(e as Error).message}`);
    }
    this.fds.push(fd);
    const header = readSafetensorsHeader(shard, fd);
    for (const [name, entry] of header.entries) {
      if (home.has(name)) throw new CheckpointError(shard, `tensor "${name}" is also in ${home.get(name)}`);
      home.set(name, shard);
      this.entries.set(name, { ...entry, fd, dataStart: header.dataStart, path: shard });
    }
  }

  /** Bytes [from, to) of tensor `name`'s data (all of it by default), read from its shard. */
  bytes(name: string, from = 0, to?: number): Buffer {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new CheckpointError(this.source, `holds no tensor "${name}"`);
    const bytes = Buffer.alloc((to ?? entry.end - entry.begin) - from);
    if (readSync(entry.fd, bytes, 0, bytes.length, entry.dataStart + entry.begin + from) !== bytes.length) throw new CheckpointError(this.source, `tensor "${name}": truncated`);
    return bytes;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}
