/**
 * Layer recycling (src/tensor/layer_recycling.ts): under withLayerRecycling each inLayerScope run
 * takes the layer before's buffers, its output alone outliving it (disowned, or copied where it is
 * a view) until the layer after it has run, with the values of a forward without it; outside,
 * inLayerScope is the layer as it is; a layer that waits is refused.
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

test('each layer takes the layer before\'s buffers and the output it read; an output outlives the layer after it; the values are a plain forward\'s', () => {
  const plainMade: Storage[][] = [];
  const plain = forward(input(), 5, plainMade).values();
  const made: Storage[][] = [];
  const outputs: Storage[] = [];
  const recycled = withLayerRecycling(() => {
    let h = input();
    for (let i = 0; i < 5; i++) {
      const mine: Storage[] = [];
      made.push(mine);
      h = inLayerScope(() => layer(h, mine));
      outputs.push(h.storage);
    }
    return h;
  }).values();
  assert.deepEqual(recycled, plain);
  assert.deepEqual(new Set(made[1]), new Set(made[0]), 'layer 1 reused layer 0\'s intermediates');
  for (let i = 2; i < 5; i++) {
    assert.deepEqual(new Set([...made[i], outputs[i]]), new Set([...made[i - 1], outputs[i - 2]]), `layer ${i} took layer ${i - 1}'s intermediates and layer ${i - 2}'s output`);
  }
  for (let i = 0; i < 4; i++) {
    assert.ok(![...made[i + 1], outputs[i + 1]].includes(outputs[i]), `layer ${i}'s output is the input of layer ${i + 1}, which does not write over it`);
  }
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
