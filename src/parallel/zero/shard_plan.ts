/**
 * How ZeRO cuts the flat parameter arena among the ranks of a group: contiguous ranges of equal
 * length (FSDP's flat-parameter idea), the last one shorter when the arena does not divide. The
 * ranges are the reduce-scatter's and the all-gather's counts, so rank r's segment of those
 * collectives is exactly its shard.
 */
export interface ShardPlan {
  /** Parameters in the whole arena. */
  total: number;
  /** [start, end) of every rank's shard, rank-major. */
  ranges: readonly (readonly [number, number])[];
  /** Each rank's shard length: the counts of reduceScatter / allGather. */
  counts: readonly number[];
}

export function planShards(total: number, world: number): ShardPlan {
  if (!Number.isInteger(world) || world < 1) throw new RangeError(`ZeRO shard plan: world size must be a positive integer, got ${world}`);
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`ZeRO shard plan: arena size must be a non-negative integer, got ${total}`);
  const per = Math.ceil(total / world);
  const ranges = Array.from({ length: world }, (_, r) => [Math.min(total, r * per), Math.min(total, (r + 1) * per)] as const);
  return { total, ranges, counts: ranges.map(([a, b]) => b - a) };
}

/**
 * Each rank's part of the arena range [start, end): the counts of a reduce-scatter or all-gather
 * over just that range (a gradient bucket, a layer group), zero for ranks whose shard misses it.
 */
export function overlapCounts(plan: ShardPlan, start: number, end: number): number[] {
  return plan.ranges.map(([a, b]) => Math.max(0, Math.min(b, end) - Math.max(a, start)));
}
