/**
 * How a tensor-parallel rank's parameter relates to the full model's (the rule is nn's ShardRule,
 * which each sharded layer states): slicing a rank's shard out of a full parameter, and assembling
 * the full parameter from every rank's shard.
 */
import type { ShardRule } from '../../nn/layers/sharded.js';

export type { ShardRule } from '../../nn/layers/sharded.js';

/** Parameter name → rule, for the split parameters of a model (the others are replicated). */
export type ShardLayout = ReadonlyMap<string, ShardRule>;

/** [rows, cols] of a 1-d or 2-d parameter shape. */
function matrixOf(shape: readonly number[]): [number, number] {
  if (shape.length === 1) return [shape[0], 1];
  if (shape.length === 2) return [shape[0], shape[1]];
  throw new Error(`tensor parallel: only 1-d and 2-d parameters split, got [${shape.join(', ')}]`);
}

/** The shape of rank's shard of a full parameter of `fullShape`. */
export function shardShape(fullShape: readonly number[], rule: ShardRule, size: number): number[] {
  const out = [...fullShape];
  if (out[rule.dim] % (rule.groups * size) !== 0) {
    throw new Error(`tensor parallel: dimension ${rule.dim} of [${fullShape.join(', ')}] does not split into ${rule.groups}×${size} equal parts`);
  }
  out[rule.dim] /= size;
  return out;
}

/**
 * Visits each contiguous run shared by the full tensor and rank's shard: (fullOffset, shardOffset,
 * length). One routine serves both directions (slicing a shard out, assembling shards in).
 */
function forEachRun(fullShape: readonly number[], rule: ShardRule, rank: number, size: number, visit: (full: number, shard: number, n: number) => void): void {
  const [rows, cols] = matrixOf(fullShape);
  if (rule.dim === 0) {
    const group = rows / rule.groups;
    const part = group / size;
    for (let g = 0; g < rule.groups; g++) visit((g * group + rank * part) * cols, g * part * cols, part * cols);
  } else {
    const group = cols / rule.groups;
    const part = group / size;
    const shardCols = cols / size;
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < rule.groups; g++) visit(r * cols + g * group + rank * part, r * shardCols + g * part, part);
    }
  }
}

/** Rank's shard of a full parameter's values. */
export function sliceShard(full: Float32Array, fullShape: readonly number[], rule: ShardRule, rank: number, size: number): Float32Array {
  const out = new Float32Array(full.length / size);
  forEachRun(fullShape, rule, rank, size, (f, s, n) => out.set(full.subarray(f, f + n), s));
  return out;
}

/** The full parameter from every rank's shard (rank-major). */
export function assembleShards(shards: readonly Float32Array[], fullShape: readonly number[], rule: ShardRule): Float32Array {
  const size = shards.length;
  const out = new Float32Array(shards[0].length * size);
  shards.forEach((shard, rank) => forEachRun(fullShape, rule, rank, size, (f, s, n) => out.set(shard.subarray(s, s + n), f)));
  return out;
}
