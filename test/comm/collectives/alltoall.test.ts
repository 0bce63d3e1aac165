/**
 * All-to-all (comm/collectives/alltoall.ts, ProcessGroup.allToAll) over every transport: equal
 * blocks, uneven blocks with empty ones (the receive counts given, or learnt from the senders),
 * world 1 as a copy, and bad counts or an overlapping output refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALL_BACKENDS, makeWorld, onAll } from '../fixture.js';

/** Rank `from`'s block for rank `to`: `count` values that say where they came from and went. */
function block(from: number, to: number, count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => from * 1e4 + to * 100 + i);
}

function rankMajor(blocks: Float32Array[]): Float32Array {
  const out = new Float32Array(blocks.reduce((s, b) => s + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

for (const backend of ALL_BACKENDS) {
  describe(`allToAll over ${backend}`, () => {
    for (const n of backend === 'inproc' ? [1, 2, 3, 4] : [2, 3]) {
      test(`world ${n}: equal blocks, then uneven ones (some empty), counts given and learnt`, async () => {
        const world = await makeWorld(backend, n);
        try {
          const ranks = Array.from({ length: n }, (_, r) => r);
          const equal = await onAll(world, (pg, r) => pg.allToAll(rankMajor(ranks.map((p) => block(r, p, 5)))));
          for (const r of ranks) assert.deepEqual(equal[r], rankMajor(ranks.map((p) => block(p, r, 5))), `rank ${r}, equal blocks`);
          const count = (from: number, to: number): number => ((from * 3 + to * 5) % 4) * 7;
          const sendCounts = (r: number): number[] => ranks.map((p) => count(r, p));
          const want = (r: number): Float32Array => rankMajor(ranks.map((p) => block(p, r, count(p, r))));
          const given = await onAll(world, (pg, r) => pg.allToAll(rankMajor(ranks.map((p) => block(r, p, count(r, p)))), {
            sendCounts: sendCounts(r), recvCounts: ranks.map((p) => count(p, r)),
          }));
          const learnt = await onAll(world, (pg, r) => pg.allToAll(rankMajor(ranks.map((p) => block(r, p, count(r, p)))), { sendCounts: sendCounts(r) }));
          for (const r of ranks) {
            assert.deepEqual(given[r], want(r), `rank ${r}, receive counts given`);
            assert.deepEqual(learnt[r], want(r), `rank ${r}, receive counts learnt`);
          }
        } finally {
          await world.close();
        }
      });
    }
  });
}

test('allToAll refuses counts that do not fit, a wrong output and an overlapping one', async () => {
  const world = await makeWorld('inproc', 2);
  try {
    const pg = world.groups[0];
    await assert.rejects(pg.allToAll(new Float32Array(5)), /5 elements do not split into 2 equal segments/);
    await assert.rejects(pg.allToAll(new Float32Array(4), { sendCounts: [1, 2] }), /counts sum to 3, the input has 4/);
    await assert.rejects(pg.allToAll(new Float32Array(4), { recvCounts: [2, -1] }), /recvCounts must be 2 non-negative integers/);
    await assert.rejects(pg.allToAll(new Float32Array(4), { output: new Float32Array(3) }), /output has 3 elements, the receive counts sum to 4/);
    const buf = new Float32Array(8);
    await assert.rejects(pg.allToAll(buf.subarray(0, 4), { output: buf.subarray(2, 6) }), /overlaps its input/);
  } finally {
    await world.close();
  }
});
