/**
 * Activation checkpointing (nn/activation_checkpointing.ts): a step with every layer recomputed in
 * the backward gives the same loss and gradients, bit for bit, as a step without, with dropout on
 * (the recomputation replays the masks), on GPT-2 and Llama, on every cpu backend; two steps in a
 * row keep the generators in step; evaluation runs the model's own forward. Inside a step's
 * recycler (as the training loop runs a step) the step takes less memory with it than without.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { checkpointScratch, enableActivationCheckpointing } from '../../src/nn/activation_checkpointing.js';
import { type ModelSpec, createModel, defaultSpec, gpt2Spec, llamaSpec } from '../../src/nn/index.js';
import type { Module } from '../../src/nn/module.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import { BufferRecycler } from '../../src/tensor/recycler.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

const VOCAB = 50;
const T = 12;

function tokens(seed: number): { ids: Tensor; labels: Int32Array } {
  const rng = new Rng(seed);
  const all = Array.from({ length: 2 * (T + 1) }, () => rng.int(VOCAB));
  const ids = [...all.slice(0, T), ...all.slice(T + 1, 2 * T + 1)];
  const labels = Int32Array.from([...all.slice(1, T + 1), ...all.slice(T + 2)]);
  return { ids: Tensor.from(ids, [2, T]), labels };
}

/** Loss and a copy of the gradients after `steps` forward/backward passes (gradients summed). */
function run(model: Module, steps: number): { losses: number[]; grads: Float32Array } {
  model.train();
  model.zeroGrad();
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { ids, labels } = tokens(s + 7);
    const loss = crossEntropy(model.forward(ids), labels);
    losses.push(loss.item());
    backward(loss);
  }
  return { losses, grads: Float32Array.from(model.arena().grads.readSync() as Float32Array) };
}

const SPECS: [string, ModelSpec][] = [
  ['gpt2-tiny (tied head)', { ...gpt2Spec('gpt2-tiny', VOCAB, T), dropout: 0.1 }],
  ['llama-tiny (own head)', { ...llamaSpec('llama-tiny', VOCAB, T), dropout: 0.1 }],
  ['llama-tiny (tied head)', { ...llamaSpec('llama-tiny', VOCAB, T), dropout: 0.1, tieEmbeddings: true }],
];

describe('activation checkpointing', () => {
  for (const [name, spec] of SPECS) {
    it(`${name}: losses and gradients bit-identical to a step without, dropout on, two passes`, () => {
      const plain = run(createModel(spec, 3), 2);
      const checkpointed = run(enableActivationCheckpointing(createModel(spec, 3)), 2);
      assert.deepEqual(checkpointed.losses, plain.losses);
      assert.ok(plain.grads.some((g) => g !== 0));
      const differ = plain.grads.findIndex((g, i) => !Object.is(g, checkpointed.grads[i]) && g !== checkpointed.grads[i]);
      assert.equal(differ, -1, `gradient ${differ} differs: ${plain.grads[differ]} vs ${checkpointed.grads[differ]}`);
    });
  }

  it('a step in its recycler takes less with it than without: one layer\'s activations at a time, not all of them', () => {
    const spec: ModelSpec = { ...llamaSpec('llama-tiny', VOCAB, T), layers: 8 };
    const taken = (model: Module): number => {
      const step = new BufferRecycler();
      step.run(() => run(model, 1));
      return step.bytesTaken + (checkpointScratch(model)?.bytesTaken ?? 0);
    };
    const plain = taken(createModel(spec, 3));
    const checkpointed = taken(enableActivationCheckpointing(createModel(spec, 3), 'llama-tiny'));
    // Without: every layer's activations live to the backward. With: each layer's input, and one layer's scratch.
    assert.ok(checkpointed < 0.6 * plain, `${checkpointed} bytes with checkpointing, ${plain} without`);
  });

  it('eval runs the model\'s own forward (no graph, no dropout) and leaves the training generators in step', () => {
    const [, spec] = SPECS[0];
    const a = run(enableActivationCheckpointing(createModel(spec, 3)), 1).losses[0];
    const model = enableActivationCheckpointing(createModel(spec, 3));
    model.eval();
    const { ids } = tokens(7);
    const evaluated = noGrad(() => model.forward(ids));
    assert.equal(evaluated.requiresGrad, false);
    const trainedAgain = run(model, 1).losses[0];
    assert.equal(trainedAgain, a);
    const evalLoss = noGrad(() => crossEntropy(model.eval().forward(ids), tokens(7).labels).item());
    assert.notEqual(evalLoss, a, 'dropout should change the training loss');
  });

  it('refuses a model without a layer list, naming it', () => {
    const resnet = createModel(defaultSpec('resnet18', [3, 8, 8], 4, { width: 4 }), 1);
    assert.throws(() => enableActivationCheckpointing(resnet, 'resnet18'), /resnet18 has no layer list/);
  });
});
