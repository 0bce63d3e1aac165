import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syntheticImage } from '../../src/data/synthetic_image.js';
import { defaultConfig } from '../../src/train/run/config.js';
import { train } from '../../src/train/loop/loop.js';
import { LocalStrategy } from '../../src/train/strategies/local.js';

describe('synthetic_image', () => {
  it('is deterministic, balanced, CIFAR-shaped by default; train and test are different draws', () => {
    const a = syntheticImage({ seed: 1, samples: 30, split: 'train' });
    const b = syntheticImage({ seed: 1, samples: 30, split: 'train' });
    const t = syntheticImage({ seed: 1, samples: 30, split: 'test' });
    assert.deepEqual(a.inputShape, [3, 32, 32]);
    assert.equal(a.numClasses, 10);
    assert.deepEqual(a.inputs, b.inputs);
    assert.notDeepEqual(a.inputs, t.inputs);
    const counts = new Array(10).fill(0);
    for (const l of a.labels) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(3));
  });

  it('a small model learns it: from chance to well above it in a few hundred steps', async () => {
    const opts = { seed: 3, size: 12, numClasses: 10, maxShift: 2, noise: 1 };
    const data = { train: syntheticImage({ ...opts, samples: 1200, split: 'train' }), test: syntheticImage({ ...opts, samples: 300, split: 'test' }) };
    const config = { ...defaultConfig('mlp'), dataset: 'synthetic_image' as const, hidden: [64], batchSize: 32, epochs: 4, lr: 0.02, evalBatchSize: 300 };
    const accuracies: number[] = [];
    await train(config, data, new LocalStrategy(), { onEval: (e) => accuracies.push(e.accuracy ?? NaN) });
    const final = accuracies.at(-1) ?? NaN;
    assert.ok(final > 0.6, `test accuracy ${final} (chance 0.1)`);
  });
});
