/**
 * Who is in which sub-group after ProcessGroup.split(color, key), as MPI_Comm_split and MLX's
 * split: ranks that gave the same color form a group, ordered by (key, parent rank); a rank whose
 * color is null or negative is in none. Every rank computes this from the same exchanged table.
 */
import { SmolError } from '../util/errors.js';

/** One rank's entry in the exchanged table: color (-1: no group) and key, as float64s. */
export const SPLIT_ENTRY_FLOATS = 2;

/** The table entry of this rank, after checking what the caller gave. */
export function splitEntry(color: number | null, key: number): Float64Array {
  if (color !== null && !Number.isSafeInteger(color)) throw new SmolError('BAD_SPLIT', `split color must be an integer or null, got ${color}`);
  if (!Number.isSafeInteger(key)) throw new SmolError('BAD_SPLIT', `split key must be an integer, got ${key}`);
  return Float64Array.of(color === null || color < 0 ? -1 : color, key);
}

/** The parent ranks of `rank`'s group in sub-rank order, or null when its color puts it in none. */
export function splitMembers(table: Float64Array, rank: number): number[] | null {
  const size = table.length / SPLIT_ENTRY_FLOATS;
  const color = table[rank * SPLIT_ENTRY_FLOATS];
  if (color < 0) return null;
  const members: number[] = [];
  for (let p = 0; p < size; p++) if (table[p * SPLIT_ENTRY_FLOATS] === color) members.push(p);
  const key = (p: number): number => table[p * SPLIT_ENTRY_FLOATS + 1];
  return members.sort((a, b) => key(a) - key(b) || a - b);
}
