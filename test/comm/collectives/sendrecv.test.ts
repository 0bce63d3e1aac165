import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BACKENDS, makeWorld, rankData } from '../fixture.js';

for (const backend of BACKENDS) {
  describe(`send/recv over ${backend}`, () => {
    test('pairs match in order, tags keep streams apart, any size', async () => {
      const world = await makeWorld(backend, 3);
      const [a, b, c] = world.groups;
      try {
        const sizes = [0, 1, 5, 40_000, 1 << 20];
        const sent = Promise.all(sizes.map((len, i) => a.send(rankData(i, len), 2)));
        const got = await Promise.all(sizes.map((len) => c.recv(new Float32Array(len), 0)));
        await sent;
        sizes.forEach((len, i) => assert.deepEqual(got[i], rankData(i, len)));
        // Tagged streams: receive tag 2 before tag 1 although tag 1 was sent first.
        await b.send(new Float32Array([1]), 0, { tag: 1 });
        await b.send(new Float32Array([2]), 0, { tag: 2 });
        assert.deepEqual(await a.recv(new Float32Array(1), 1, { tag: 2 }), new Float32Array([2]));
        assert.deepEqual(await a.recv(new Float32Array(1), 1, { tag: 1 }), new Float32Array([1]));
      } finally {
        await world.close();
      }
    });
  });
}

test('recv times out naming the sender; sending to oneself is refused', async () => {
  const world = await makeWorld('inproc', 2);
  try {
    await assert.rejects(world.groups[0].recv(new Float32Array(1), 1, { timeoutMs: 50 }), /^TimeoutError: recv timed out after 50 ms waiting for rank 1$/);
    assert.throws(() => world.groups[0].send(new Float32Array(1), 0), /invalid peer rank 0/);
  } finally {
    await world.close();
  }
});
