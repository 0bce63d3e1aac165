/**
 * Writing a model's tensors as Hugging Face does: one `model.safetensors` when they fit under the
 * shard size, else `model-0000i-of-0000n.safetensors` shards filled in order (a tensor larger than
 * the size gets a shard of its own, as transformers' `save_pretrained(max_shard_size=...)` does) and
 * `model.safetensors.index.json` with `metadata.total_size` and the `weight_map`.
 */
import { rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic_file.js';
import { INDEX_FILE, SINGLE_FILE } from './hf_weights.js';
import { type WriteTensor, writeSafetensors } from './safetensors.js';

/** transformers' default max_shard_size, "5GB" (decimal units, as it counts them). */
export const DEFAULT_SHARD_BYTES = 5e9;

const UNITS: Record<string, number> = { '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };

/** "5GB", "500MB", "2KiB" or a number of bytes (transformers' spelling: decimal KB/MB/GB, binary KiB/MiB/GiB). */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`"${text}" is not a size: write bytes or a number with KB, MB, GB (or KiB, MiB, GiB), e.g. 5GB`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < 1) throw new Error(`"${text}" is not a positive size`);
  return bytes;
}

/** Bytes a tensor takes in the file. */
function byteLength(t: WriteTensor): number {
  if ('int64' in t) return 8 * t.int64.length;
  return t.data.length * ((t.dtype ?? 'F32') === 'F32' ? 4 : 2);
}

/** The tensors cut into shards of at most `maxBytes` each, in order (a larger tensor alone). */
export function planShards(tensors: readonly [string, WriteTensor][], maxBytes: number): [string, WriteTensor][][] {
  const shards: [string, WriteTensor][][] = [];
  let current: [string, WriteTensor][] = [];
  let size = 0;
  for (const entry of tensors) {
    const bytes = byteLength(entry[1]);
    if (current.length > 0 && size + bytes > maxBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(entry);
    size += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/** `model-00001-of-00003.safetensors`. */
export function shardName(i: number, count: number): string {
  const pad = (n: number): string => String(n).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Writes the tensors into `dir` (which exists) as one file or shards plus an index, first removing
 * the weight files an earlier save left there (so a folder never mixes two saves' shards).
 * Returns the file names written.
 */
export function writeShardedSafetensors(dir: string, tensors: readonly [string, WriteTensor][], metadata: Record<string, string>, maxBytes = DEFAULT_SHARD_BYTES): string[] {
  for (const f of readdirSync(dir)) {
    if (f === SINGLE_FILE || f === INDEX_FILE || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)) rmSync(join(dir, f), { force: true });
  }
  const shards = planShards(tensors, maxBytes);
  if (shards.length === 1) {
    writeSafetensors(join(dir, SINGLE_FILE), [...shards[0]], metadata);
    return [SINGLE_FILE];
  }
  const weightMap: Record<string, string> = {};
  const names = shards.map((shard, i) => {
    const name = shardName(i, shards.length);
    writeSafetensors(join(dir, name), [...shard], metadata);
    for (const [tensor] of shard) weightMap[tensor] = name;
    return name;
  });
  const totalSize = tensors.reduce((n, [, t]) => n + byteLength(t), 0);
  writeFileAtomic(join(dir, INDEX_FILE), `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`);
  return [...names, INDEX_FILE];
}
