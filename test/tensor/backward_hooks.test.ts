import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel } from '../../src/nn/models/index.js';
import { backward, backwardAsync } from '../../src/tensor/autograd.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

function lossOf(seed: number): { loss: Tensor; model: ReturnType<typeof createModel> } {
  const model = createModel({ type: 'mlp', inputDim: 6, hidden: [5, 4], out: 3 }, seed);
  const x = Tensor.randn([8, 6], new Rng(seed + 1));
  return { model, loss: crossEntropy(model.forward(x), Int32Array.from({ length: 8 }, (_, i) => i % 3)) };
}

describe('backward hooks', () => {
  it('onLeafReady fires once per parameter, last layer first, with its gradient already final', () => {
    const { model, loss } = lossOf(3);
    const names = new Map(model.namedParameters().map(([n, p]) => [p, n]));
    const seen: Array<[string, Float32Array]> = [];
    backward(loss, undefined, { onLeafReady: (leaf) => void seen.push([names.get(leaf)!, (leaf.gradValues() as Float32Array).slice()]) });
    assert.equal(seen.length, names.size);
    assert.equal(new Set(seen.map(([n]) => n)).size, names.size, 'each parameter once');
    // The last linear layer's parameters come before the first layer's.
    const at = (prefix: string): number => seen.findIndex(([n]) => n.startsWith(prefix));
    const layers = [...new Set(model.namedParameters().map(([n]) => n.split('.').slice(0, -1).join('.')))];
    assert.ok(at(layers[layers.length - 1]) < at(layers[0]), `order ${seen.map(([n]) => n).join(', ')}`);
    // The gradient seen at the hook is the final one.
    for (const [n, g] of seen) assert.deepEqual(g, model.namedParameters().find(([m]) => m === n)![1].gradValues(), n);
  });

  it('backwardAsync yields where asked and gives the same bits as backward', async () => {
    const a = lossOf(5);
    const b = lossOf(5);
    backward(a.loss);
    let yields = 0;
    await backwardAsync(b.loss, undefined, { onLeafReady: () => true, keepYielding: () => (yields++, false) });
    assert.ok(yields > 0);
    assert.deepEqual(b.model.arena().grads.readSync(), a.model.arena().grads.readSync());
  });
});
