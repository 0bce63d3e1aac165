import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BatchNorm, Conv2d, Embedding, LayerNorm, Linear, Module, ParamArena, Sequential, makeOptimizer,
} from '../../../src/nn/index.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

/** A layer whose 1-d `scale` decays and 2-d `mask` does not, by explicit override. */
class Overridden extends Module {
  constructor() {
    super();
    this.registerParameter('scale', Tensor.full([3], 1), { decay: true });
    this.registerParameter('mask', Tensor.full([2, 2], 1), { decay: false });
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}

function model(): Sequential {
  const r = new Rng(1);
  return new Sequential(new Embedding(5, 4, r), new Linear(4, 3, r), new LayerNorm(3), new Conv2d(1, 2, 3, r), new BatchNorm(2), new Overridden());
}

describe('weight decay skips biases and norm parameters', () => {
  it('marks biases, norm gains/shifts (1-d) as no-decay and keeps matrices, kernels and embeddings; layers may override', () => {
    const m = model();
    assert.deepEqual([...m.noDecayNames()].sort(), ['1.bias', '2.bias', '2.weight', '3.bias', '4.bias', '4.weight', '5.mask']);
    const flags = Object.fromEntries(m.arena().entries.map((e) => [e.name, e.decay]));
    assert.deepEqual(flags, {
      '0.weight': true, '1.weight': true, '1.bias': false, '2.weight': false, '2.bias': false, '3.weight': true,
      '3.bias': false, '4.weight': false, '4.bias': false, '5.scale': true, '5.mask': false,
    });
    // Adjacent entries with the same flag merge into one run.
    const runs = m.arena().decayRuns();
    assert.deepEqual(runs.map((r) => r.decay), [true, false, true, false, true, false]);
    assert.equal(runs.reduce((n, r) => n + r.size, 0), m.arena().size);
    assert.equal(runs[0].size, 5 * 4 + 3 * 4);
  });

  it('a bare ParamArena.pack decays everything (torch.optim semantics for hand-built arenas)', () => {
    const a = ParamArena.pack([['w', Tensor.zeros([2, 2])], ['b', Tensor.zeros([2])]]);
    assert.deepEqual(a.decayRuns(), [{ offset: 0, size: 6, decay: true }]);
  });

  for (const name of ['adamw', 'adam', 'sgd'] as const) {
    it(`${name}: no-decay parameters move exactly as with weight decay 0, the others as with it; decayAll decays all`, () => {
      const run = (weightDecay: number, decayAll = false): Float32Array => {
        const m = model();
        const a = m.arena();
        const opt = makeOptimizer(a, { name, lr: 0.05, momentum: 0.9, weightDecay, decayAll });
        const r = new Rng(9);
        for (let s = 0; s < 3; s++) {
          for (let i = 0; i < a.size; i++) a.grads.readSync()[i] = r.normal();
          opt.step();
        }
        return Float32Array.from(a.params.readSync());
      };
      const m = model();
      const decayed = run(0.1), plain = run(0), all = run(0.1, true);
      for (const e of m.arena().entries) {
        const part = (b: Float32Array): number[] => Array.from(b.subarray(e.offset, e.offset + e.size));
        if (e.decay) {
          assert.deepEqual(part(decayed), part(all), `${e.name}: decays like decayAll`);
          assert.notDeepEqual(part(decayed), part(plain), `${e.name}: weight decay must change it`);
        } else {
          assert.deepEqual(part(decayed), part(plain), `${e.name}: must not decay`);
          assert.notDeepEqual(part(all), part(plain), `${e.name}: decayAll decays it`);
        }
      }
    });
  }
});
