import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProcessGroup } from '../../src/comm/process_group.js';
import { splitEntry, splitMembers } from '../../src/comm/split.js';
import { PeerError, SmolError, TimeoutError } from '../../src/util/errors.js';
import { ALL_BACKENDS, makeWorld, onAll, rankData, type World } from './fixture.js';

function table(entries: Array<[number | null, number]>): Float64Array {
  const t = new Float64Array(2 * entries.length);
  entries.forEach(([c, k], r) => t.set(splitEntry(c, k), 2 * r));
  return t;
}

test('members: same color together, ordered by key then rank; null or negative color joins none', () => {
  const t = table([[1, 0], [0, 5], [1, 0], [0, -1], [null, 0], [-3, 0], [1, -7]]);
  assert.deepEqual(splitMembers(t, 0), [6, 0, 2]);
  assert.deepEqual(splitMembers(t, 2), [6, 0, 2]);
  assert.deepEqual(splitMembers(t, 1), [3, 1]);
  assert.equal(splitMembers(t, 4), null);
  assert.equal(splitMembers(t, 5), null);
});

test('split refuses a color or key that is not an integer', () => {
  assert.throws(() => splitEntry(1.5, 0), (err: unknown) => err instanceof SmolError && err.code === 'BAD_SPLIT' && /color must be an integer or null, got 1.5/.test(err.message));
  assert.throws(() => splitEntry(0, Number.NaN), /key must be an integer, got NaN/);
});

/** The 2x2 mesh of 4 ranks: data-parallel groups {0,2},{1,3} (same tensor slot) and tensor-parallel groups {0,1},{2,3}. */
async function mesh(world: World): Promise<Array<{ dp: ProcessGroup; tp: ProcessGroup }>> {
  return onAll(world, async (pg, r) => {
    const dp = await pg.split(r % 2, r, { name: 'dp' });
    const tp = await pg.split(Math.floor(r / 2), r, { name: 'tp' });
    assert.ok(dp && tp);
    return { dp, tp };
  });
}

for (const backend of ALL_BACKENDS) {
  describe(`split over ${backend}`, () => {
    test('a 2x2 mesh: data and tensor groups and the world used at once, every collective', async () => {
      const world = await makeWorld(backend, 4, { chunkBytes: 64, timeoutMs: 10_000 });
      try {
        const groups = await mesh(world);
        assert.deepEqual(groups.map((g) => [g.dp.rank, g.dp.size, g.tp.rank, g.tp.size]), [[0, 2, 0, 2], [0, 2, 1, 2], [1, 2, 0, 2], [1, 2, 1, 2]]);
        const len = 1001;
        const results = await onAll(world, async (pg, r) => {
          const { dp, tp } = groups[r];
          const [dpSum, tpSum, worldSum, tpShard, dpGathered, fromPeer] = await Promise.all([
            dp.allReduce(rankData(r, len), { algorithm: 'ring' }),
            tp.allReduce(rankData(r + 10, len)),
            pg.allReduce(rankData(r + 20, len)),
            tp.reduceScatter(rankData(r + 30, 2 * len)),
            dp.allGather(rankData(r + 40, 5)),
            r % 2 === 0 ? tp.send(Float32Array.of(r), 1).then(() => null) : tp.recv(new Float32Array(1), 0),
          ]);
          await Promise.all([dp.barrier(), tp.barrier(), pg.barrier()]);
          return { dpSum, tpSum, worldSum, tpShard, dpGathered, fromPeer };
        });
        const sum = (ranks: number[], offset: number, length: number): Float32Array => {
          const out = new Float32Array(length);
          for (const p of ranks) rankData(p + offset, length).forEach((v, i) => (out[i] += v));
          return out;
        };
        for (let r = 0; r < 4; r++) {
          const dpRanks = r % 2 === 0 ? [0, 2] : [1, 3];
          const tpRanks = r < 2 ? [0, 1] : [2, 3];
          const got = results[r];
          assert.deepEqual(got.dpSum, sum(dpRanks, 0, len), `rank ${r} dp all-reduce`);
          assert.deepEqual(got.tpSum, sum(tpRanks, 10, len), `rank ${r} tp all-reduce`);
          assert.deepEqual(got.worldSum, sum([0, 1, 2, 3], 20, len), `rank ${r} world all-reduce`);
          const tpRank = tpRanks.indexOf(r);
          assert.deepEqual(got.tpShard, sum(tpRanks, 30, 2 * len).subarray(tpRank * len, (tpRank + 1) * len), `rank ${r} tp reduce-scatter`);
          const gathered = new Float32Array(10);
          dpRanks.forEach((p, i) => gathered.set(rankData(p + 40, 5), 5 * i));
          assert.deepEqual(got.dpGathered, gathered, `rank ${r} dp all-gather`);
          if (r % 2 === 1) assert.deepEqual(got.fromPeer, Float32Array.of(r - 1), `rank ${r} p2p in its tp group`);
        }
        for (const g of groups) assert.ok(g.dp.bytesSent > 0 && g.tp.bytesSent > 0, 'sub-groups count the bytes they send');
      } finally {
        await world.close();
      }
    });
  });
}

test("a sub-group's bytes are counted in it and in its parent; closing it leaves the parent usable", async () => {
  const world = await makeWorld('inproc', 2);
  try {
    const subs = await onAll(world, (pg) => pg.split(0));
    const before = world.groups[0].bytesSent;
    await onAll(world, (_pg, r) => subs[r]!.allReduce(new Float32Array(100_000), { algorithm: 'direct' }));
    assert.equal(subs[0]!.bytesSent, 400_000);
    assert.equal(world.groups[0].bytesSent - before, 400_000);
    await Promise.all(subs.map((s) => s!.close()));
    await assert.rejects(subs[0]!.allReduce(new Float32Array(4)), (err: unknown) => err instanceof SmolError && err.code === 'CLOSED');
    const sums = await onAll(world, (pg, r) => pg.allReduce(Float32Array.of(r + 1)));
    assert.deepEqual(sums, [Float32Array.of(3), Float32Array.of(3)]);
  } finally {
    await world.close();
  }
});

test('keys order the sub-group; a rank with a null color gets no group and the others go on', async () => {
  const world = await makeWorld('inproc', 4);
  try {
    const subs = await onAll(world, (pg, r) => pg.split(r === 3 ? null : 7, -r));
    assert.equal(subs[3], null);
    assert.deepEqual(subs.slice(0, 3).map((g) => [g!.rank, g!.size]), [[2, 3], [1, 3], [0, 3]]);
    const gathered = await onAll(world, (_pg, r) => (r === 3 ? Promise.resolve(null) : subs[r]!.allGather(Float32Array.of(r))));
    for (const g of gathered.slice(0, 3)) assert.deepEqual(g, Float32Array.of(2, 1, 0));
  } finally {
    await world.close();
  }
});

test('a group of one: every collective is a no-op (or a copy)', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const alone = await onAll(world, (pg, r) => pg.split(r));
    const g = alone[1]!;
    assert.deepEqual([g.rank, g.size], [0, 1]);
    assert.deepEqual(await g.allReduce(Float32Array.of(1, 2), { op: 'avg' }), Float32Array.of(1, 2));
    assert.deepEqual(await g.reduceScatter(Float32Array.of(3, 4)), Float32Array.of(3, 4));
    assert.deepEqual(await g.allGather(Float32Array.of(5)), Float32Array.of(5));
    assert.deepEqual(await g.broadcast(Float32Array.of(6), 0), Float32Array.of(6));
    await g.barrier();
    assert.equal(g.bytesSent, 0);
  } finally {
    await world.close();
  }
});

test('sub-groups split again: a nested group talks apart from its parent and siblings', async () => {
  const world = await makeWorld('inproc', 4);
  try {
    const halves = await onAll(world, (pg, r) => pg.split(r % 2));
    const quarters = await onAll(world, (_pg, r) => halves[r]!.split(halves[r]!.rank));
    const out = await onAll(world, (pg, r) => Promise.all([quarters[r]!.allReduce(Float32Array.of(r)), halves[r]!.allReduce(Float32Array.of(r)), pg.allReduce(Float32Array.of(r))]));
    assert.deepEqual(out.map(([q, h, w]) => [q[0], h[0], w[0]]), [[0, 2, 6], [1, 4, 6], [2, 2, 6], [3, 4, 6]]);
  } finally {
    await world.close();
  }
});

test('a group splits at most 16 times, with an error saying so', async () => {
  const world = await makeWorld('inproc', 1);
  try {
    const pg = world.groups[0];
    for (let i = 0; i < 16; i++) assert.ok(await pg.split(0));
    await assert.rejects(pg.split(0), (err: unknown) => err instanceof SmolError && err.code === 'TOO_MANY_SPLITS' && /at most 16 times/.test(err.message));
  } finally {
    await world.close();
  }
});

test('a rank that never calls split makes it time out naming that rank', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const [a, b] = [0, 1].map((r) => world.groups[r].split(0, r, { timeoutMs: 200 }));
    await assert.rejects(a, (err: unknown) => err instanceof TimeoutError && /^split timed out after 200 ms waiting for rank 2$/.test(err.message));
    await assert.rejects(b, TimeoutError);
  } finally {
    await world.close();
  }
});

test('a late rank in a sub-group is named in the group and in the parent', async () => {
  const world = await makeWorld('inproc', 4, { timeoutMs: 5000 });
  try {
    // tp groups {0,1} and {2,3}: parent rank 3 is sub-rank 1 of its group.
    const tp = await onAll(world, (pg, r) => pg.split(Math.floor(r / 2), r, { name: 'tp' }));
    const late = tp[2]!.allReduce(new Float32Array(8), { timeoutMs: 200 });
    await assert.rejects(late, (err: unknown) => err instanceof TimeoutError && err.ranks.length === 1 && err.ranks[0] === 1 && err.message === "allreduce timed out after 200 ms waiting for rank 1 (rank 3 of the parent, in sub-group 'tp')");
    // The sibling group is untouched.
    const sums = await Promise.all([tp[0]!.allReduce(Float32Array.of(1)), tp[1]!.allReduce(Float32Array.of(2))]);
    assert.deepEqual(sums, [Float32Array.of(3), Float32Array.of(3)]);
  } finally {
    await world.close();
  }
});

test('a lost peer is reported in the group numbering, naming its parent rank', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const subs = await onAll(world, (pg, r) => pg.split(r === 0 ? -1 : 0, r, { name: 'pair' }));
    const lost: Array<[number, string]> = [];
    subs[1]!.transport.on('peerLost', (rank, err) => lost.push([rank, err.message]));
    const pending = subs[1]!.recv(new Float32Array(1), 1);
    (world.transports[2] as unknown as { kill(): void }).kill();
    await assert.rejects(pending, (err: unknown) => err instanceof PeerError && err.rank === 1 && /^rank 1 \(in-process #2\): connection lost \(rank 2 of the parent, in sub-group 'pair'\)$/.test(err.message));
    assert.deepEqual(lost, [[1, "rank 1 (in-process #2): connection lost (rank 2 of the parent, in sub-group 'pair')"]]);
  } finally {
    await world.close();
  }
});
