import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BACKENDS, makeWorld, onAll, rankData } from '../fixture.js';

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
