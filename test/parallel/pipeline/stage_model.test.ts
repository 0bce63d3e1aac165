import assert from 'node:assert/strict';
import { test } from 'node:test';
import { modelLayers } from '../../../src/nn/layer_list.js';
import { createModel } from '../../../src/nn/models/index.js';
import { gpt2Spec } from '../../../src/nn/models/presets.js';
import { measureLayers } from '../../../src/parallel/pipeline/layer_cost.js';
import { PipelineStageModule, buildStage } from '../../../src/parallel/pipeline/stage_model.js';
import { Tensor } from '../../../src/tensor/tensor.js';

const spec = { ...gpt2Spec('gpt2-tiny', 50, 8), layers: 3 };
const ids = Tensor.fromHost(Float32Array.from({ length: 16 }, (_, i) => (i * 7) % 50), [2, 8]);

test('GPT-2\'s layer list: embeddings, each block, the head reading the tied embedding', () => {
  const layers = modelLayers(createModel(spec, 1));
  assert.deepEqual(layers.map((l) => l.name), ['transformer.wte+wpe', 'transformer.h.0', 'transformer.h.1', 'transformer.h.2', 'transformer.ln_f+lm_head']);
  assert.equal(layers[4].tied?.name, 'transformer.wte.weight');
});

test('stages chained give the whole model\'s output; parameter names are the whole model\'s', () => {
  const whole = createModel(spec, 1);
  const want = whole.forward(ids).toArray();
  const first = buildStage(createModel(spec, 1), 0, 2);
  const last = buildStage(createModel(spec, 1), 2, 5);
  const got = last.forward(first.forward(ids)).toArray();
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])), `logit ${i}: ${v} vs ${want[i]}`));
  const names = new Set(whole.namedParameters().map(([n]) => n));
  for (const stage of [first, last]) for (const [n] of stage.namedParameters()) assert.ok(names.has(n), `${n} is not a parameter of the whole model`);
});

test('the head\'s stage keeps a copy of the tied embedding; the embedding\'s stage owns it', () => {
  const first = buildStage(createModel(spec, 1), 0, 2);
  const last = buildStage(createModel(spec, 1), 2, 5);
  assert.deepEqual(first.tiedOwned, ['transformer.wte.weight']);
  assert.deepEqual(last.tiedCopies, ['transformer.wte.weight']);
  const copy = last.namedParameters().find(([n]) => n === 'transformer.wte.weight')![1];
  const owner = first.namedParameters().find(([n]) => n === 'transformer.wte.weight')![1];
  assert.notEqual(copy, owner);
  assert.deepEqual(copy.toArray(), owner.toArray());
  // One stage holding both: no copy.
  const all = buildStage(createModel(spec, 1), 0, 5);
  assert.deepEqual([all.tiedCopies, all.tiedOwned], [[], []]);
});

test('a Sequential MLP: each linear layer with the activations after it; flatten joins the first', () => {
  const mlp = createModel({ type: 'mlp', inputDim: 6, hidden: [5, 4], out: 3 }, 1);
  assert.deepEqual(modelLayers(mlp).map((l) => l.name), ['0+1+2', '3+4', '5']);
  const stage = new PipelineStageModule(modelLayers(mlp), 1, 3);
  assert.deepEqual(stage.namedParameters().map(([n]) => n), ['3.weight', '3.bias', '5.weight', '5.bias']);
  assert.ok(stage.isLast && !stage.isFirst);
});

test('a range outside the layer list is refused', () => {
  assert.throws(() => buildStage(createModel(spec, 1), 3, 9), /not a range of the model's 5 layers/);
});

test('the timed pass gives a time, parameters (the tied weight counted at its reader) and an activation size per layer', () => {
  const layers = modelLayers(createModel(spec, 1));
  const cost = measureLayers(layers, ids, { minRepeats: 2, budgetMs: 0 });
  assert.equal(cost.ms.length, 5);
  assert.ok(cost.ms.every((t) => t > 0));
  const width = spec.width;
  assert.equal(cost.parameters[0], 50 * width + spec.context * width);
  assert.equal(cost.parameters[4], 2 * width + 50 * width);
  assert.deepEqual(cost.activationFloats, [16 * width, 16 * width, 16 * width, 16 * width, 16 * 50]);
});
