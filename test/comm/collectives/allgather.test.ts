import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALL_BACKENDS, BACKENDS, makeWorld, onAll, rankData } from '../fixture.js';

function concat(n: number, len: number): Float32Array {
  const out = new Float32Array(n * len);
  for (let r = 0; r < n; r++) out.set(rankData(r, len), r * len);
  return out;
}

for (const backend of BACKENDS) {
  describe(`allGather over ${backend}`, () => {
    const worlds = backend === 'inproc' ? [1, 2, 3, 4, 5] : [2, 3, 5];
    for (const n of worlds) {
      test(`world ${n}: odd lengths, chunked lanes`, async () => {
        const world = await makeWorld(backend, n, { chunkBytes: 128 });
        try {
          for (const len of [1, 2, 7, 1001]) {
            const out = await onAll(world, (pg, r) => pg.allGather(rankData(r, len)));
            for (let r = 0; r < n; r++) assert.deepEqual(out[r], concat(n, len), `rank ${r} len ${len}`);
          }
        } finally {
          await world.close();
        }
      });
    }
  });
}

test('allGather into a caller-provided output, and a wrong-sized output is refused', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const outs = [0, 1, 2].map(() => new Float32Array(3 * 5));
    await onAll(world, (pg, r) => pg.allGather(rankData(r, 5), outs[r]));
    assert.deepEqual(outs[1], concat(3, 5));
    await assert.rejects(world.groups[0].allGather(new Float32Array(5), new Float32Array(14)), /expected 5 x 3/);
  } finally {
    await world.close();
  }
});

for (const backend of ALL_BACKENDS) {
  describe(`allGather with counts over ${backend}`, () => {
    for (const n of [1, 2, 3, 4]) {
      test(`world ${n}: uneven blocks (one empty) land rank-major, chunked lanes`, async () => {
        const world = await makeWorld(backend, n, { chunkBytes: 64 });
        try {
          for (const counts of [Array.from({ length: n }, (_, r) => 7 + 100 * r), Array.from({ length: n }, (_, r) => (r === 0 ? 0 : r + 1))]) {
            const total = counts.reduce((a, b) => a + b, 0);
            const want = new Float32Array(total);
            let start = 0;
            for (let r = 0; r < n; r++) {
              want.set(rankData(r, counts[r]), start);
              start += counts[r];
            }
            const out = await onAll(world, (pg, r) => pg.allGather(rankData(r, counts[r]), undefined, { counts }));
            for (let r = 0; r < n; r++) assert.deepEqual(out[r], want, `rank ${r}, counts ${counts.join(',')}`);
          }
        } finally {
          await world.close();
        }
      });
    }
  });
}

test('allGather in place: the input is this rank\'s block of the output', async () => {
  const world = await makeWorld('inproc', 3, { chunkBytes: 16 });
  try {
    const outs = [0, 1, 2].map((r) => {
      const out = new Float32Array(3 * 9);
      out.set(rankData(r, 9), 9 * r);
      return out;
    });
    await onAll(world, (pg, r) => pg.allGather(outs[r].subarray(9 * r, 9 * r + 9), outs[r]));
    for (const out of outs) assert.deepEqual(out, concat(3, 9));
  } finally {
    await world.close();
  }
});

test('allGather refuses counts that do not fit its input or output', async () => {
  const world = await makeWorld('inproc', 2);
  try {
    const pg = world.groups[0];
    await assert.rejects(pg.allGather(new Float32Array(3), undefined, { counts: [2, 5] }), /input has 3 elements, counts say 2 for rank 0/);
    await assert.rejects(pg.allGather(new Float32Array(2), new Float32Array(8), { counts: [2, 5] }), /output has 8 elements, expected the counts' sum, 7/);
    await assert.rejects(pg.allGather(new Float32Array(2), undefined, { counts: [2] }), /counts has 1 entries for a group of 2/);
  } finally {
    await world.close();
  }
});
