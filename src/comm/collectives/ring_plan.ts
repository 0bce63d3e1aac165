/**
 * How a buffer is cut for the ring algorithms: n segments (one per rank, as even as possible, so odd
 * lengths and lengths below n work), each cut into the same number of lanes. A lane is an
 * independent ring over one piece of every segment; running all lanes at once pipelines the ring
 * (while one piece is being reduced the next is on the wire), as in Gloo's chunked ring. Pieces are
 * at least `chunkFloats` long and there are at most `maxLanes` lanes: a few large messages in flight
 * beat many small ones once the pipeline is full (fewer syscalls and wake-ups).
 * The plan depends only on (length, n, chunk size), so every rank computes the same one.
 */
export interface RingPlan {
  /** segStart[i]..segStart[i+1] is segment i; length n + 1. */
  readonly segStart: number[];
  readonly lanes: number;
  /** Largest piece length, for sizing scratch. */
  readonly maxPiece: number;
}

/** Most lanes (concurrent pieces) per ring; see above. */
export const MAX_LANES = 4;

export function planRing(length: number, n: number, chunkFloats: number, maxLanes = MAX_LANES): RingPlan {
  const segStart: number[] = [];
  for (let i = 0; i <= n; i++) segStart.push(Math.floor((i * length) / n));
  return planSegments(segStart, chunkFloats, maxLanes);
}

/**
 * The plan over segments of the given lengths (segment i: counts[i] elements, one per rank), for the
 * collectives that take explicit counts (reduce-scatter and all-gather of uneven shards).
 */
export function planCounts(counts: readonly number[], chunkFloats: number, maxLanes = MAX_LANES): RingPlan {
  const segStart = [0];
  for (const c of counts) segStart.push(segStart[segStart.length - 1] + c);
  return planSegments(segStart, chunkFloats, maxLanes);
}

function planSegments(segStart: number[], chunkFloats: number, maxLanes: number): RingPlan {
  let maxSeg = 0;
  for (let i = 0; i + 1 < segStart.length; i++) maxSeg = Math.max(maxSeg, segStart[i + 1] - segStart[i]);
  const lanes = Math.max(1, Math.min(maxLanes, Math.floor(maxSeg / Math.max(1, chunkFloats))));
  return { segStart, lanes, maxPiece: Math.ceil(maxSeg / lanes) };
}

/** [start, end) of lane `lane` of segment `seg`. */
export function pieceRange(plan: RingPlan, seg: number, lane: number): [number, number] {
  const a = plan.segStart[seg];
  const len = plan.segStart[seg + 1] - a;
  return [a + Math.floor((lane * len) / plan.lanes), a + Math.floor(((lane + 1) * len) / plan.lanes)];
}
