/**
 * The round's arithmetic: the tasks' deltas combined in task order (never arrival order), in float64,
 * so the new global weights do not depend on which node ran what, when, or how often it was retried.
 */
import type { Weighting } from './messages.js';

/** Weight of each task: equal, or by its shard's sample count. */
export function taskWeights(rows: readonly number[], weighting: Weighting): number[] {
  if (weighting === 'equal') return rows.map(() => 1 / rows.length);
  const total = rows.reduce((a, b) => a + b, 0);
  return rows.map((n) => n / total);
}

/** global += Σ_t weight[t] · delta[t], summing t = 0, 1, 2, … (deltas indexed by task). */
export function applyAverage(global: Float32Array, deltas: readonly Float32Array[], weights: readonly number[]): void {
  const sum = new Float64Array(global.length);
  deltas.forEach((d, t) => {
    if (d.length !== global.length) throw new Error(`applyAverage: task ${t} delta has ${d.length} values, the model ${global.length}`);
    const w = weights[t];
    for (let i = 0; i < d.length; i++) sum[i] += w * d[i];
  });
  for (let i = 0; i < global.length; i++) global[i] += sum[i];
}
