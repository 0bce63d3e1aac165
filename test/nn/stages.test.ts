import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, defaultSpec } from '../../src/nn/models/index.js';
import { forwardStagesOf } from '../../src/nn/stages.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

function staged(model: ReturnType<typeof createModel>, x: Tensor): Tensor {
  let y = x;
  for (const s of forwardStagesOf(model)!) y = s.run(y);
  return y;
}

describe('forward stages (nn/stages.ts: the layer list, run at once)', () => {
  it('GPT-2: embeddings, each block, final norm with the tied head — the forward\'s bits', () => {
    const model = createModel({ type: 'gpt2', vocabSize: 20, context: 8, layers: 3, width: 16, heads: 2, dropout: 0 }, 4);
    const stages = forwardStagesOf(model)!;
    assert.deepEqual(stages.map((s) => s.name), ['transformer.wte+wpe', 'transformer.h.0', 'transformer.h.1', 'transformer.h.2', 'transformer.ln_f+lm_head']);
    assert.deepEqual([...stages[4].modules.map(([n]) => n), stages[4].tied?.name], ['transformer.ln_f', 'transformer.wte.weight']);
    const rng = new Rng(1);
    const ids = Tensor.fromHost(Float32Array.from({ length: 2 * 8 }, () => rng.int(20)), [2, 8]);
    assert.deepEqual(staged(model, ids).values(), model.forward(ids).values());
  });

  it('an MLP (Sequential): each linear layer with the activations after it, the forward\'s bits', () => {
    const model = createModel({ type: 'mlp', inputDim: 6, hidden: [5, 4], out: 3 }, 2);
    const stages = forwardStagesOf(model)!;
    assert.equal(stages[0].name, '0+1+2');
    const x = Tensor.fromHost(Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)), [2, 6]);
    assert.deepEqual(staged(model, x).values(), model.forward(x).values());
  });

  it('BERT: its layer list, the forward\'s bits', () => {
    const model = createModel(defaultSpec('bert-tiny', [16], 20), 1);
    model.eval();
    const rng = new Rng(2);
    const ids = Tensor.fromHost(Float32Array.from({ length: 2 * 16 }, () => rng.int(20)), [2, 16]);
    assert.equal(forwardStagesOf(model)![0].name, 'bert.embeddings');
    assert.deepEqual(staged(model, ids).values(), model.forward(ids).values());
  });

  it('models without a layer list say so (null)', () => {
    assert.equal(forwardStagesOf(createModel({ type: 'resnet', block: 'basic', blocks: [1], width: 4, stem: 'cifar', inChannels: 3, inputSize: 8, out: 4 }, 1)), null);
  });
});
