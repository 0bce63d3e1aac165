/**
 * The per-rank segment lengths of the collectives that cut a buffer by rank (reduce-scatter,
 * all-gather): given explicitly, or equal parts of the total.
 */
import { SmolError } from '../../util/errors.js';

export function segmentCounts(op: string, total: number, size: number, counts?: readonly number[]): number[] {
  if (counts === undefined) {
    if (total % size !== 0) throw new SmolError('BAD_COUNTS', `${op}: ${total} elements do not split into ${size} equal segments; pass counts`);
    return new Array<number>(size).fill(total / size);
  }
  if (counts.length !== size) throw new SmolError('BAD_COUNTS', `${op}: counts has ${counts.length} entries for a group of ${size}`);
  let sum = 0;
  for (const [i, c] of counts.entries()) {
    if (!Number.isInteger(c) || c < 0) throw new SmolError('BAD_COUNTS', `${op}: counts[${i}] is ${c}, not a count`);
    sum += c;
  }
  if (sum !== total) throw new SmolError('BAD_COUNTS', `${op}: counts sum to ${sum}, the input has ${total} elements`);
  return [...counts];
}
