/**
 * Σ g² of each arena entry's gradient, as host numbers: reduced on the arena's device and read
 * together (awaited; at once on the cpu), so a split model's gradient norm (tensor and
 * pipeline parallelism sum these over their groups) costs one wait per step, not one per entry.
 */
import type { ArenaEntry, ParamArena } from '../../nn/arena.js';
import { sumOfSquares } from '../../tensor/scalar.js';

export async function gradSquares(arena: ParamArena, entries: readonly ArenaEntry[] = arena.entries): Promise<number[]> {
  const sums = entries.map((e) => sumOfSquares(arena.grads.view(e.offset, e.size)));
  return Promise.all(sums.map((s) => s.read()));
}
