/**
 * Cutting a model's layer list into pipeline stages, one per node, by measured cost and memory.
 *
 * The rule: stage s runs on node s and takes a contiguous range of layers (at least one). Its time
 * per micro-batch is (Σ forward+backward ms of its layers, measured on a reference node) / the
 * node's speed (1 = the reference; a node slowed to half by a CPU quota has 0.5). Its memory is the
 * Σ bytes of its layers (parameters, gradients, optimizer state and activations), which must fit in
 * the node's memory. Among the cuts that fit, the plan minimises the slowest stage's time (the
 * pipeline's steady-state step is paced by it); among equal bottlenecks each stage starts
 * at the earliest layer that reaches it. So a slower or smaller node gets fewer (or cheaper) layers. Dynamic programming over
 * (stage, layers so far): O(P·L²).
 */
export interface StageNode {
  /** Relative speed (1 = the node the layer times were measured on). */
  speed: number;
  /** Bytes the node can give its layers; absent: unlimited. */
  memoryBytes?: number;
}

export interface StagePlan {
  /** For each stage, its layers [from, to). */
  ranges: [from: number, to: number][];
  /** Each stage's time per micro-batch (ms at its node's speed). */
  stageMs: number[];
}

export function planStages(layerMs: readonly number[], nodes: readonly StageNode[], layerBytes?: readonly number[]): StagePlan {
  const L = layerMs.length;
  const P = nodes.length;
  if (P < 1) throw new RangeError('--pipeline-stages must be at least 1');
  if (L < P) throw new RangeError(`--pipeline-stages ${P} is more than the model's ${L} layers`);
  if (layerBytes && layerBytes.length !== L) throw new RangeError(`${layerBytes.length} layer sizes for ${L} layers`);
  nodes.forEach((n, i) => {
    if (!(n.speed > 0)) throw new RangeError(`pipeline node ${i}: speed must be positive, got ${n.speed}`);
  });
  const prefix = (xs: readonly number[]): number[] => xs.reduce<number[]>((acc, x) => (acc.push(acc[acc.length - 1] + x), acc), [0]);
  const ms = prefix(layerMs);
  const bytes = layerBytes ? prefix(layerBytes) : null;
  const fits = (s: number, from: number, to: number): boolean =>
    !bytes || nodes[s].memoryBytes === undefined || bytes[to] - bytes[from] <= nodes[s].memoryBytes!;
  // best[s][j]: the least bottleneck of stages 0..s holding layers [0, j); cut[s][j]: where stage s starts.
  const best = Array.from({ length: P }, () => new Array<number>(L + 1).fill(Infinity));
  const cut = Array.from({ length: P }, () => new Array<number>(L + 1).fill(-1));
  for (let j = 1; j <= L; j++) if (fits(0, 0, j)) best[0][j] = ms[j] / nodes[0].speed;
  for (let s = 1; s < P; s++) {
    for (let j = s + 1; j <= L; j++) {
      for (let i = s; i < j; i++) {
        if (best[s - 1][i] === Infinity || !fits(s, i, j)) continue;
        const t = Math.max(best[s - 1][i], (ms[j] - ms[i]) / nodes[s].speed);
        if (t < best[s][j]) {
          best[s][j] = t;
          cut[s][j] = i;
        }
      }
    }
  }
  if (best[P - 1][L] === Infinity) throw new RangeError(`the model's ${L} layers do not fit in the memory of the ${P} pipeline nodes`);
  const ranges: [number, number][] = [];
  let to = L;
  for (let s = P - 1; s >= 0; s--) {
    const from = s === 0 ? 0 : cut[s][to];
    ranges.unshift([from, to]);
    to = from;
  }
  return { ranges, stageMs: ranges.map(([a, b], s) => (ms[b] - ms[a]) / nodes[s].speed) };
}
