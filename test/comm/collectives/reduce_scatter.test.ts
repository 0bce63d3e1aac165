import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReduceOp } from '../../../src/comm/collectives/reduce_ops.js';
import { SmolError, TimeoutError } from '../../../src/util/errors.js';
import { ALL_BACKENDS, bitsEqual, makeWorld, onAll, rankData } from '../fixture.js';

/** Element-wise reduction of every rank's rankData over n ranks (what all-reduce would give). */
function reduced(n: number, length: number, op: ReduceOp): Float32Array {
  const inputs = Array.from({ length: n }, (_, r) => rankData(r, length));
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    let acc = op === 'max' ? -Infinity : 0;
    for (const x of inputs) acc = op === 'max' ? Math.max(acc, x[i]) : acc + x[i];
    out[i] = op === 'avg' ? acc / n : acc;
  }
  return out;
}

/** Counts that do not divide evenly: rank r gets base + r (and one rank may get none). */
function unevenCounts(n: number, base: number): number[] {
  return Array.from({ length: n }, (_, r) => base + r);
}

for (const backend of ALL_BACKENDS) {
  describe(`reduceScatter over ${backend}`, () => {
    for (const n of [1, 2, 3, 4]) {
      test(`world ${n}: equal and uneven segments, sum, avg and max, chunked lanes`, async () => {
        const world = await makeWorld(backend, n, { chunkBytes: 64, timeoutMs: 10_000 });
        try {
          const cases: Array<{ counts?: number[]; length: number }> = [
            { length: 4 * n },
            { length: 1001 * n },
            { counts: unevenCounts(n, 7), length: unevenCounts(n, 7).reduce((a, b) => a + b, 0) },
            { counts: unevenCounts(n, 0), length: unevenCounts(n, 0).reduce((a, b) => a + b, 0) },
          ];
          for (const { counts, length } of cases) {
            for (const op of ['sum', 'avg', 'max'] as const) {
              const inputs = Array.from({ length: n }, (_, r) => rankData(r, length));
              const outs = await onAll(world, (pg, r) => pg.reduceScatter(inputs[r], undefined, { op, counts }));
              const want = reduced(n, length, op);
              let start = 0;
              for (let r = 0; r < n; r++) {
                const segment = counts ? counts[r] : length / n;
                const expect = want.subarray(start, start + segment);
                if (op === 'avg') for (let i = 0; i < segment; i++) assert.ok(Math.abs(outs[r][i] - expect[i]) <= 1e-5 * Math.max(1, Math.abs(expect[i])), `rank ${r} [${i}]`);
                else assert.deepEqual(outs[r], expect, `rank ${r}, ${op}, length ${length}`);
                assert.deepEqual(inputs[r], rankData(r, length), `rank ${r}'s input is left as it was`);
                start += segment;
              }
            }
          }
        } finally {
          await world.close();
        }
      });
    }

    test('overwriteInput: the same bits as out of place, the partial sums left in the input', async () => {
      for (const n of [3, 4]) {
        const world = await makeWorld(backend, n, { chunkBytes: 256, timeoutMs: 10_000 });
        try {
          const counts = unevenCounts(n, 300);
          const length = counts.reduce((a, b) => a + b, 0);
          for (const op of ['sum', 'avg'] as const) {
            const outOfPlace = await onAll(world, (pg, r) => pg.reduceScatter(rankData(r, length, 'float'), undefined, { op, counts }));
            const inputs = Array.from({ length: n }, (_, r) => rankData(r, length, 'float'));
            const inPlace = await onAll(world, (pg, r) => pg.reduceScatter(inputs[r], undefined, { op, counts, overwriteInput: true }));
            for (let r = 0; r < n; r++) assert.ok(bitsEqual(inPlace[r], outOfPlace[r]), `world ${n}, ${op}, rank ${r}`);
            // Rank 0's input now holds partial sums (what the option allows), so it is no longer its data.
            assert.ok(!bitsEqual(inputs[0], rankData(0, length, 'float')), `world ${n}: the input held the partial sums`);
          }
        } finally {
          await world.close();
        }
      }
    });

    test('world 3: sends (n-1)/n of the buffer per rank', async () => {
      const world = await makeWorld(backend, 3, { chunkBytes: 1 << 20 });
      try {
        const before = world.groups.map((g) => g.bytesSent);
        await onAll(world, (pg, r) => pg.reduceScatter(rankData(r, 3 * 1000)));
        for (const [r, g] of world.groups.entries()) {
          const payload = g.bytesSent - before[r];
          // Two messages of 1000 floats, plus at most a frame header each (TCP and shared memory count headers).
          assert.ok(payload >= 2 * 4000 && payload <= 2 * 4000 + 2 * 64, `rank ${r} sent ${payload} bytes`);
        }
      } finally {
        await world.close();
      }
    });
  });
}

test('reduceScatter into a caller-provided output; bad counts, sizes and overlaps are refused', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const outs = [0, 1, 2].map(() => new Float32Array(2));
    await onAll(world, (pg, r) => pg.reduceScatter(rankData(r, 6), outs[r]));
    assert.deepEqual(outs[1], reduced(3, 6, 'sum').subarray(2, 4));
    const pg = world.groups[0];
    const code = (c: string) => (err: unknown) => err instanceof SmolError && err.code === c;
    await assert.rejects(pg.reduceScatter(new Float32Array(7)), (err: unknown) => code('BAD_COUNTS')(err) && /7 elements do not split into 3 equal segments; pass counts/.test((err as Error).message));
    await assert.rejects(pg.reduceScatter(new Float32Array(7), undefined, { counts: [3, 3] }), /counts has 2 entries for a group of 3/);
    await assert.rejects(pg.reduceScatter(new Float32Array(7), undefined, { counts: [3, 3, 2] }), /counts sum to 8, the input has 7 elements/);
    await assert.rejects(pg.reduceScatter(new Float32Array(7), undefined, { counts: [3, 5, -1] }), /counts\[2\] is -1/);
    await assert.rejects(pg.reduceScatter(new Float32Array(6), new Float32Array(3)), /output has 3 elements, rank 0's segment 2/);
    const shared = new Float32Array(6);
    await assert.rejects(pg.reduceScatter(shared, shared.subarray(0, 2)), /overlaps its input/);
    await assert.rejects(pg.reduceScatter(new Float32Array(6), undefined, { op: 'min' as ReduceOp }), /unknown reduce op 'min'/);
  } finally {
    await world.close();
  }
});

test('a reduceScatter a rank never joins times out naming that rank', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const [first, second] = [0, 1].map((r) => world.groups[r].reduceScatter(rankData(r, 6), undefined, { timeoutMs: 200 }));
    // Rank 0 receives from rank 2 (its left neighbour), which never sends.
    await assert.rejects(first, (err: unknown) => err instanceof TimeoutError && /^reducescatter timed out after 200 ms waiting for rank 2$/.test(err.message));
    await assert.rejects(second, TimeoutError);
  } finally {
    await world.close();
  }
});
