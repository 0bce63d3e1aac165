/**
 * Σ g² of each arena entry's gradient, as host numbers: read at once on the cpu, and from a GPU
 * reduced there and read together (awaited), so a split model's gradient norm (tensor and
 * pipeline parallelism sum these over their groups) costs one wait per step, not one per entry.
 */
import type { ArenaEntry, ParamArena } from '../nn/arena.js';
import { sumOfSquares } from '../tensor/scalar.js';
import { CPU } from '../tensor/storage.js';

export async function gradSquares(arena: ParamArena, entries: readonly ArenaEntry[] = arena.entries): Promise<number[]> {
  const sums = entries.map((e) => sumOfSquares(arena.grads.view(e.offset, e.size)));
  return arena.device === CPU ? sums.map((s) => s.readSync()) : Promise.all(sums.map((s) => s.read()));
}
