import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReduceOp } from '../../../src/comm/collectives/reduce_ops.js';
import type { AllReduceAlgorithm } from '../../../src/comm/process_group.js';
import { BACKENDS, bitsEqual, makeWorld, onAll, rankData, type Backend } from '../fixture.js';

function expected(n: number, length: number, op: ReduceOp): Float32Array {
  const out = new Float32Array(length);
  const inputs = Array.from({ length: n }, (_, r) => rankData(r, length));
  for (let i = 0; i < length; i++) {
    let acc = op === 'max' ? -Infinity : 0;
    for (let r = 0; r < n; r++) {
      const v = inputs[r][i];
      acc = op === 'max' ? Math.max(acc, v) : acc + v;
    }
    out[i] = op === 'avg' ? acc / n : acc;
  }
  return out;
}

async function check(backend: Backend, n: number, length: number, op: ReduceOp, algorithm: AllReduceAlgorithm, chunkBytes?: number): Promise<void> {
  const world = await makeWorld(backend, n, { chunkBytes, timeoutMs: 10_000 });
  try {
    const bufs = await onAll(world, (pg, r) => pg.allReduce(rankData(r, length), { op, algorithm }));
    const want = expected(n, length, op);
    for (let r = 0; r < n; r++) {
      if (op === 'avg') for (let i = 0; i < length; i++) assert.ok(Math.abs(bufs[r][i] - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])), `rank ${r} [${i}]`);
      else assert.deepEqual(bufs[r], want, `rank ${r}`);
      assert.ok(bitsEqual(bufs[r], bufs[0]), `rank ${r} differs from rank 0`);
    }
  } finally {
    await world.close();
  }
}

for (const backend of BACKENDS) {
  describe(`allReduce over ${backend}`, () => {
    const sizes = backend === 'inproc' ? [1, 2, 3, 5, 7, 64, 1001, 4097] : [1, 7, 1001];
    const worlds = backend === 'inproc' ? [1, 2, 3, 4, 5] : [2, 3, 5];
    for (const n of worlds) {
      for (const algorithm of ['ring', 'direct'] as const) {
        test(`${algorithm}, world ${n}, odd and tiny lengths, sum`, async () => {
          for (const len of sizes) await check(backend, n, len, 'sum', algorithm, 64);
        });
      }
      test(`doubling, world ${n}, odd and tiny lengths, sum, avg and max`, async () => {
        for (const len of sizes) await check(backend, n, len, 'sum', 'doubling');
        await check(backend, n, 33, 'avg', 'doubling');
        await check(backend, n, 33, 'max', 'doubling');
      });
      test(`world ${n}: avg and max`, async () => {
        await check(backend, n, 333, 'avg', 'ring', 128);
        await check(backend, n, 333, 'max', 'ring', 128);
        await check(backend, n, 33, 'avg', 'direct');
        await check(backend, n, 33, 'max', 'direct');
      });
    }
    test('MNIST-sized bucket (101,770 floats), world 4, avg, bit-identical floats', async () => {
      const n = 4;
      const world = await makeWorld(backend, n);
      try {
        const bufs = await onAll(world, (pg, r) => pg.allReduce(rankData(r, 101_770, 'float'), { op: 'avg' }));
        for (let r = 1; r < n; r++) assert.ok(bitsEqual(bufs[r], bufs[0]), `rank ${r} differs`);
      } finally {
        await world.close();
      }
    });
  });
}

test('16 MB all-reduce over TCP, world 2 (and bit-identical floats)', async () => {
  const world = await makeWorld('tcp', 2);
  try {
    const len = 4 << 20;
    const bufs = await onAll(world, (pg, r) => pg.allReduce(rankData(r, len, 'float')));
    assert.ok(bitsEqual(bufs[0], bufs[1]));
    const a = rankData(0, len, 'float');
    const b = rankData(1, len, 'float');
    for (let i = 0; i < len; i += 4099) assert.equal(bufs[0][i], Math.fround(a[i] + b[i]));
  } finally {
    await world.close();
  }
});

test('doubling at 4 ranks: the fixed tree (x0+x1)+(x2+x3), bit for bit, and within float tolerance of the ring', async () => {
  const n = 4;
  const len = 5000;
  const world = await makeWorld('inproc', n);
  try {
    const viaDoubling = await onAll(world, (pg, r) => pg.allReduce(rankData(r, len, 'float'), { algorithm: 'doubling' }));
    const viaRing = await onAll(world, (pg, r) => pg.allReduce(rankData(r, len, 'float'), { algorithm: 'ring' }));
    const x = Array.from({ length: n }, (_, r) => rankData(r, len, 'float'));
    for (let i = 0; i < len; i++) {
      const tree = Math.fround(Math.fround(x[0][i] + x[1][i]) + Math.fround(x[2][i] + x[3][i]));
      assert.ok(Object.is(viaDoubling[0][i], tree), `[${i}] ${viaDoubling[0][i]} != ${tree}`);
      const scale = Math.abs(x[0][i]) + Math.abs(x[1][i]) + Math.abs(x[2][i]) + Math.abs(x[3][i]);
      assert.ok(Math.abs(viaDoubling[0][i] - viaRing[0][i]) <= 2 * 2 ** -23 * scale, `[${i}] doubling ${viaDoubling[0][i]} vs ring ${viaRing[0][i]}`);
    }
    for (let r = 1; r < n; r++) assert.ok(bitsEqual(viaDoubling[r], viaDoubling[0]), `rank ${r} differs`);
  } finally {
    await world.close();
  }
});

test('auto at 4 ranks picks doubling for 4 KB and 32 KB and the ring for 1 MB (the bits tell)', async () => {
  const world = await makeWorld('inproc', 4);
  try {
    for (const [len, want, other] of [[1024, 'doubling', 'direct'], [8192, 'doubling', 'ring'], [1 << 18, 'ring', 'doubling']] as const) {
      const run = (algorithm: AllReduceAlgorithm): Promise<Float32Array[]> => onAll(world, (pg, r) => pg.allReduce(rankData(r, len, 'float'), { algorithm }));
      const [auto, chosen, notChosen] = [await run('auto'), await run(want), await run(other)];
      assert.ok(!bitsEqual(chosen[0], notChosen[0]), 'the data must tell the algorithms apart');
      assert.ok(bitsEqual(auto[0], chosen[0]), `${len * 4} bytes: auto is not ${want}`);
    }
  } finally {
    await world.close();
  }
});

test('16 MB all-reduce in process, world 3, many lanes', async () => {
  await check('inproc', 3, 4 << 20, 'sum', 'ring', 1 << 20);
});

test('works in place on subarray views of one arena and leaves the rest alone', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const arenas = [0, 1, 2].map((r) => rankData(r, 1000));
    const before = arenas.map((a) => a.slice());
    await onAll(world, async (pg, r) => {
      await Promise.all([pg.allReduce(arenas[r].subarray(3, 400)), pg.allReduce(arenas[r].subarray(401, 999), { algorithm: 'ring' })]);
    });
    for (let r = 0; r < 3; r++) {
      for (const i of [0, 1, 2, 400, 999]) assert.equal(arenas[r][i], before[r][i], `rank ${r} [${i}] touched`);
      for (const i of [3, 399, 401, 998]) assert.equal(arenas[r][i], before[0][i] + before[1][i] + before[2][i]);
    }
  } finally {
    await world.close();
  }
});

test('world of one: every collective is a no-op', async () => {
  const world = await makeWorld('inproc', 1);
  const pg = world.groups[0];
  const data = rankData(0, 10);
  const copy = data.slice();
  await pg.allReduce(data, { op: 'avg' });
  await pg.broadcast(data, 0);
  await pg.barrier();
  assert.deepEqual(data, copy);
  assert.deepEqual(await pg.allGather(data), copy);
  await world.close();
});

test('unknown op is refused', async () => {
  const world = await makeWorld('inproc', 2);
  await assert.rejects(world.groups[0].allReduce(new Float32Array(4), { op: 'prod' as ReduceOp }), /unknown reduce op 'prod'/);
  await world.close();
});
