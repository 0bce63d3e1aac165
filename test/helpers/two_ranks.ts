import type { GroupReducer } from '../../src/tensor/group_sum.js';
import type { Storage } from '../../src/tensor/storage.js';

/**
 * Two ranks of a group in one process, without comm: each sum waits for the other rank's call,
 * then both hold the total. Counts the sums (both ranks together).
 */
export function twoRanks(): { reducers: (GroupReducer & { rank: number })[]; calls: () => number } {
  let first: { s: Storage; done: () => void } | null = null;
  let calls = 0;
  const sumInPlace = (s: Storage): Promise<void> => new Promise<void>((resolve) => {
    calls++;
    if (!first) {
      first = { s, done: resolve };
      return;
    }
    const a = first.s.readSync() as Float32Array;
    const total = Float32Array.from(s.readSync() as Float32Array, (v, i) => v + a[i]);
    first.s.write(total);
    s.write(total);
    const other = first;
    first = null;
    other.done();
    resolve();
  });
  return { reducers: [{ rank: 0, size: 2, sumInPlace }, { rank: 1, size: 2, sumInPlace }], calls: () => calls };
}
