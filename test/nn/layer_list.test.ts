import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { layerListOf, modelLayers, runLayers } from '../../src/nn/layer_list.js';
import { settled } from '../../src/nn/layers/maybe_async.js';
import { createModel, defaultSpec } from '../../src/nn/models/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

const tokens = (n: number, t: number, vocab: number, seed: number): Tensor => {
  const rng = new Rng(seed);
  return Tensor.fromHost(Float32Array.from({ length: n * t }, () => rng.int(vocab)), [n, t]);
};

describe('the layer list (nn/layer_list.ts): one grouping rule, one naming scheme', () => {
  it('GPT-2 and BERT: the top-level blocks, named by their Hugging Face module names; chained, the forward\'s bits', () => {
    const gpt = createModel({ type: 'gpt2', vocabSize: 20, context: 8, layers: 2, width: 16, heads: 2, dropout: 0 }, 3);
    const bert = createModel(defaultSpec('bert-tiny', [8], 20, { layers: 2, width: 16 }), 3);
    bert.eval();
    assert.deepEqual(modelLayers(gpt).map((l) => l.name), ['transformer.wte+wpe', 'transformer.h.0', 'transformer.h.1', 'transformer.ln_f+lm_head']);
    assert.deepEqual(modelLayers(bert).map((l) => l.name), ['bert.embeddings', 'bert.encoder.layer.0', 'bert.encoder.layer.1', 'cls.predictions']);
    assert.equal(modelLayers(bert)[3].tied?.name, 'bert.embeddings.word_embeddings.weight');
    for (const model of [gpt, bert]) {
      const ids = tokens(2, 8, 20, 5);
      assert.deepEqual(settled(runLayers(modelLayers(model), ids), 'test').values(), model.forward(ids).values());
    }
  });

  it('a CNN (Sequential): each child with parameters starts a layer, the ReLU + pooling pair stays inside it; the forward\'s bits', () => {
    const cnn = createModel({ type: 'cnn', inChannels: 1, inputSize: 8, out: 3 }, 2);
    const layers = modelLayers(cnn);
    assert.deepEqual(layers.map((l) => l.name), ['0+1+2', '3+4+5+6', '7+8', '9']);
    assert.deepEqual(layers[1].modules.map(([n]) => n), ['3', '4', '5', '6']);
    const x = Tensor.fromHost(Float32Array.from({ length: 2 * 64 }, (_, i) => Math.cos(i)), [2, 1, 8, 8]);
    assert.deepEqual(settled(runLayers(layers, x), 'test').values(), cnn.forward(x).values());
  });

  it('a model without a layer list: null, or an error naming it', () => {
    const resnet = createModel({ type: 'resnet', block: 'basic', blocks: [1], width: 4, stem: 'cifar', inChannels: 3, inputSize: 8, out: 4 }, 1);
    assert.equal(layerListOf(resnet), null);
    assert.throws(() => modelLayers(resnet, 'resnet18'), /resnet18 has no layer list/);
  });
});
