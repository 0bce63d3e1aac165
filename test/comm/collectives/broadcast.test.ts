import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BACKENDS, makeWorld, onAll, rankData } from '../fixture.js';

for (const backend of BACKENDS) {
  describe(`broadcast over ${backend}`, () => {
    const worlds = backend === 'inproc' ? [1, 2, 3, 4, 5] : [2, 3, 5];
    for (const n of worlds) {
      test(`world ${n}: every root, odd lengths, chunked chain`, async () => {
        const world = await makeWorld(backend, n, { chunkBytes: 256 });
        try {
          for (const len of [1, 3, 1001]) {
            for (let root = 0; root < n; root++) {
              const out = await onAll(world, (pg, r) => pg.broadcast(r === root ? rankData(root, len) : new Float32Array(len), root));
              for (let r = 0; r < n; r++) assert.deepEqual(out[r], rankData(root, len), `root ${root} rank ${r} len ${len}`);
            }
          }
        } finally {
          await world.close();
        }
      });
    }
  });
}

test('broadcast of bytes (not floats) and of 16 MB', async () => {
  const world = await makeWorld('inproc', 3);
  try {
    const text = new TextEncoder().encode('hello, ranks');
    const got = await onAll(world, (pg, r) => pg.broadcast(r === 1 ? text.slice() : new Uint8Array(text.length), 1));
    for (const g of got) assert.equal(new TextDecoder().decode(g), 'hello, ranks');
    const big = await onAll(world, (pg, r) => pg.broadcast(r === 0 ? rankData(0, 4 << 20) : new Float32Array(4 << 20), 0));
    assert.deepEqual(big[2], rankData(0, 4 << 20));
  } finally {
    await world.close();
  }
});

test('a root outside the group is refused', async () => {
  const world = await makeWorld('inproc', 2);
  await assert.rejects(world.groups[0].broadcast(new Float32Array(1), 2), /root 2 is not a rank/);
  await world.close();
});
