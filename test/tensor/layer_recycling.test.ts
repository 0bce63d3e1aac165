/**
 * Layer recycling (src/tensor/layer_recycling.ts): under withLayerRecycling each inLayerScope run
 * takes the layer before's buffers, its output alone outliving it (disowned, or copied where it is
 * a view), with the values of a forward without it; outside, inLayerScope is the layer as it is; a
 * layer that waits is refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inLayerScope, withLayerRecycling } from '../../src/tensor/layer_recycling.js';
import { add, mul } from '../../src/tensor/ops/elementwise.js';
import type { Storage } from '../../src/tensor/storage.js';
import { Tensor } from '../../src/tensor/tensor.js';

/** A "layer": two intermediates and an output of x's shape; records the storages it made. */
function layer(x: Tensor, made: Storage[]): Tensor {
  const a = mul(x, x);
  const b = add(a, x);
  made.push(a.storage, b.storage);
  return add(b, x);
}

function forward(x: Tensor, layers: number, made: Storage[][]): Tensor {
  let h = x;
  for (let i = 0; i < layers; i++) {
    const mine: Storage[] = [];
    made.push(mine);
    h = inLayerScope(() => layer(h, mine));
  }
  return h;
}

const input = (): Tensor => Tensor.from([0.5, -1, 0.25, 2, -0.75, 1.5], [2, 3]);

test('each layer takes the layer before\'s buffers; the output outlives its layer; the values are a plain forward\'s', () => {
  const plainMade: Storage[][] = [];
  const plain = forward(input(), 4, plainMade).values();
  const made: Storage[][] = [];
  const outputs: Tensor[] = [];
  const recycled = withLayerRecycling(() => {
    let h = input();
    for (let i = 0; i < 4; i++) {
      const mine: Storage[] = [];
      made.push(mine);
      h = inLayerScope(() => layer(h, mine));
      outputs.push(h);
    }
    return h;
  }).values();
  assert.deepEqual(recycled, plain);
  for (let i = 1; i < 4; i++) assert.deepEqual(new Set(made[i]), new Set(made[i - 1]), `layer ${i} reused layer ${i - 1}'s intermediates`);
  const outs = new Set(outputs.map((o) => o.storage));
  assert.equal(outs.size, 4, 'every output is a buffer of its own');
  for (const m of made) for (const s of m) assert.ok(!outs.has(s), 'no output is a recycled intermediate');
  assert.ok(new Set(plainMade.flat()).size === plainMade.flat().length, 'without recycling every intermediate is fresh');
});

test('an output that is a view of a lent buffer is copied out; outside withLayerRecycling a layer runs as it is', () => {
  const viewed = withLayerRecycling(() => {
    const h = inLayerScope(() => new Tensor(mul(input(), input()).storage.view(2, 3), [3]));
    // The next layer's sum takes the squares' buffer, and would show through a view left in place.
    inLayerScope(() => add(input(), input()));
    return h;
  });
  assert.deepEqual([...viewed.values()], [0.0625, 4, 0.5625]);
  const made: Storage[] = [];
  const plain = inLayerScope(() => layer(input(), made));
  assert.equal(plain.shape.length, 2);
});

test('a layer that waits (a tensor-parallel group sum) is refused by name', () => {
  assert.throws(
    () => withLayerRecycling(() => inLayerScope(() => Promise.resolve(input()))),
    /layer recycling: a layer waits on its group \(tensor parallel\)/,
  );
});
