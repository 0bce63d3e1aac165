import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TimeoutError } from '../../../src/util/errors.js';
import { BACKENDS, makeWorld, onAll } from '../fixture.js';

for (const backend of BACKENDS) {
  describe(`barrier over ${backend}`, () => {
    for (const n of [1, 2, 3, 4, 5]) {
      test(`world ${n}: nobody leaves before the last arrives`, async () => {
        const world = await makeWorld(backend, n);
        try {
          let arrived = 0;
          const leftEarly: boolean[] = [];
          await onAll(world, async (pg, r) => {
            await new Promise((res) => setTimeout(res, r * 15));
            arrived++;
            await pg.barrier();
            leftEarly.push(arrived < n);
          });
          assert.deepEqual(leftEarly, new Array(n).fill(false));
        } finally {
          await world.close();
        }
      });
    }
  });
}

test('a rank that never comes makes the barrier time out naming a late rank', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const results = await Promise.allSettled([world.groups[0].barrier({ timeoutMs: 200 }), world.groups[1].barrier({ timeoutMs: 200 })]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      const err = (r as PromiseRejectedResult).reason;
      assert.ok(err instanceof TimeoutError, String(err));
      assert.match(err.message, /^barrier timed out after 200 ms waiting for rank \d$/);
    }
  } finally {
    await world.close();
  }
});
