import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DATASET_GIVES, modelDatasetMismatch } from '../../src/config/compatibility.js';
import { DATASET_NAMES } from '../../src/config/spellings.js';
import { MODEL_NAMES } from '../../src/nn/models/names.js';

describe('model/dataset compatibility', () => {
  it('refuses an MLP on a token dataset, naming both and what would fit', () => {
    const why = modelDatasetMismatch('mlp', 'synthetic_text');
    assert.ok(why);
    assert.match(why, /model mlp takes images or vectors/);
    assert.match(why, /dataset synthetic_text gives tokens/);
    assert.match(why, /gpt2-tiny/);
    assert.match(why, /mnist/);
  });

  it('refuses image models on vectors or tokens and token models on images', () => {
    for (const [m, d] of [['cnn', 'synthetic-regression'], ['resnet18', 'synthetic_text'], ['gpt2-tiny', 'synthetic_image'], ['bert-tiny', 'synthetic-regression']] as const) {
      assert.ok(modelDatasetMismatch(m, d), `${m} on ${d}`);
    }
  });

  it('accepts the pairs that train', () => {
    for (const [m, d] of [['mlp', 'mnist'], ['mlp', 'synthetic-regression'], ['mlp', 'synthetic_image'], ['cnn', 'cifar10'], ['resnet50', 'synthetic_image'], ['gpt2', 'text'], ['bert-tiny', 'synthetic_text']] as const) {
      assert.equal(modelDatasetMismatch(m, d), null, `${m} on ${d}`);
    }
  });

  it('every dataset declares what it gives and every model fits at least one dataset', () => {
    assert.deepEqual(Object.keys(DATASET_GIVES).sort(), [...DATASET_NAMES].sort());
    for (const m of MODEL_NAMES) assert.ok(DATASET_NAMES.some((d) => modelDatasetMismatch(m, d) === null), m);
  });
});
