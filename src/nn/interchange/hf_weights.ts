/**
 * The weights of a Hugging Face folder: `model.safetensors`, or the shards that
 * `model.safetensors.index.json` lists (its `weight_map`: tensor name → shard file; its
 * `metadata.total_size` may be missing). The index is checked against the shards' own headers, so
 * a tensor the index places in a shard that lacks it is refused by name.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CheckpointError } from '../checkpoint.js';
import { type SafeTensor, readSafetensors } from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const CONFIG_FILE = 'config.json';

/** True when `path` is a folder (a Hugging Face model folder, or a mistaken one: callers check its files). */
export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The shard files of a folder and, when sharded, which shard each tensor is said to live in. */
export interface FolderWeights {
  files: string[];
  /** Tensor name → shard file (sharded folders only). */
  weightMap?: Map<string, string>;
}

/** Where a folder's weights are: one file, or the shards its index names (each checked to exist). */
export function folderWeights(dir: string): FolderWeights {
  const single = join(dir, SINGLE_FILE);
  const index = join(dir, INDEX_FILE);
  if (existsSync(index)) return readIndex(dir, index);
  if (existsSync(single)) return { files: [single] };
  throw new CheckpointError(dir, `holds neither ${SINGLE_FILE} nor ${INDEX_FILE} (a Hugging Face model folder has one; a PyTorch .bin folder must be converted to safetensors first)`);
}

function readIndex(dir: string, index: string): FolderWeights {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(index, 'utf8'));
  } catch (e) {
    throw new CheckpointError(index, `is not valid JSON (${(e as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new CheckpointError(index, 'has no weight_map object (tensor name → shard file)');
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    // A shard is a file beside the index, never a path elsewhere.
    if (typeof shard !== 'string' || basename(shard) !== shard || !shard.endsWith('.safetensors')) {
      throw new CheckpointError(index, `weight_map["${name}"] is ${JSON.stringify(shard)}, not a .safetensors file name in the same folder`);
    }
    weightMap.set(name, join(dir, shard));
  }
  const files = [...new Set(weightMap.values())].sort();
  for (const f of files) if (!existsSync(f)) throw new CheckpointError(index, `names shard ${basename(f)}, which is not in ${dir}`);
  return { files, weightMap };
}

/**
 * Every tensor of a folder's weights, read whole (shards merged). A tensor in two shards, or one
 * the index places in a shard that does not hold it, is refused by name.
 */
export function readFolderTensors(dir: string): Map<string, SafeTensor> {
  const { files, weightMap } = folderWeights(dir);
  const tensors = new Map<string, SafeTensor>();
  const home = new Map<string, string>();
  for (const file of files) {
    for (const [name, t] of readSafetensors(file).tensors) {
      if (home.has(name)) throw new CheckpointError(file, `tensor "${name}" is also in ${basename(home.get(name)!)}`);
      home.set(name, file);
      tensors.set(name, t);
    }
  }
  if (weightMap) checkWeightMap(dir, weightMap, home);
  return tensors;
}

/** The index's weight_map agrees with where the tensors really are (names → shard files). */
export function checkWeightMap(dir: string, weightMap: ReadonlyMap<string, string>, home: ReadonlyMap<string, string>): void {
  for (const [name, shard] of weightMap) {
    if (home.get(name) !== shard) {
      throw new CheckpointError(join(dir, INDEX_FILE), `weight_map places "${name}" in ${basename(shard)}, ${home.has(name) ? `but it is in ${basename(home.get(name)!)}` : 'but no shard holds it'}`);
    }
  }
}
