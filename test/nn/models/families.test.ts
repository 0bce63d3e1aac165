import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { SGD, createModel, defaultSpec, describeSpec } from '../../../src/nn/index.js';
import type { Module } from '../../../src/nn/module.js';
import { backward, noGrad } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

/** Parameter count of each published preset: the figures torchvision and Hugging Face report. */
describe('model families: published sizes', () => {
  const count = (name: string, shape: number[], classes: number, sizes = {}): number =>
    createModel(defaultSpec(name as never, shape, classes, sizes), 0).numParameters();
  for (const [name, shape, classes, params] of [
    ['resnet50', [3, 224, 224], 1000, 25_557_032], // torchvision.models.resnet50()
    ['resnet18', [3, 224, 224], 1000, 11_689_512], // torchvision.models.resnet18()
  ] as const) {
    it(`${name} has ${params.toLocaleString('en')} parameters`, () => assert.equal(count(name, [...shape], classes), params));
  }
  // The 124M/110M models take tens of seconds to initialise on a loaded machine: count one and two
  // layers with a one-token vocabulary and one position, and scale the embeddings up.
  const scaled = (name: string, layers: number, vocab: number, positions: number, width: number): number => {
    const one = count(name, [1], 1, { layers: 1, context: 1 });
    const two = count(name, [1], 1, { layers: 2, context: 1 });
    return one + (layers - 1) * (two - one) + (vocab - 1 + positions - 1) * width;
  };
  it('gpt2 has 124,439,808 parameters (GPT2LMHeadModel.from_pretrained("gpt2").num_parameters())', () => {
    assert.equal(scaled('gpt2', 12, 50257, 1024, 768), 124_439_808);
  });
  it('bert has 109,514,298 parameters (BertForMaskedLM, bert-base-uncased); the MLM bias scales with the vocabulary', () => {
    assert.equal(scaled('bert', 12, 30522, 512, 768) + 30522 - 1, 109_514_298);
  });
});

function tokens(n: number, t: number, vocab: number, seed: number): Tensor {
  const rng = new Rng(seed);
  return Tensor.from(Array.from({ length: n * t }, () => rng.int(vocab)), [n, t]);
}

function fit(model: Module, x: Tensor, y: Int32Array, steps: number, lr: number): number[] {
  const opt = new SGD(model.arena(), { lr, momentum: 0.9 });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    model.zeroGrad();
    const loss = crossEntropy(model.forward(x), y);
    losses.push(loss.item());
    backward(loss);
    opt.step();
  }
  return losses;
}

describe('model families: behaviour', () => {
  it('gpt2-tiny: HF names, tied head, causal (a later token never changes earlier logits), learns', () => {
    const spec = defaultSpec('gpt2-tiny', [12], 50);
    assert.equal(describeSpec(spec), 'gpt2 2L×128 4H ctx 128 vocab 50');
    const m = createModel(spec, 1);
    const names = m.namedParameters().map(([n]) => n);
    assert.equal(names[0], 'transformer.wte.weight');
    assert.ok(names.includes('transformer.h.1.attn.c_attn.weight') && names.includes('transformer.ln_f.bias'));
    assert.ok(!names.some((n) => n.startsWith('lm_head')), 'the LM head is tied to wte, not a second matrix');
    const x = tokens(2, 12, 50, 2);
    const a = noGrad(() => m.forward(x));
    assert.deepEqual(a.shape, [2, 12, 50]);
    const x2 = Tensor.from(x.values(), x.shape);
    x2.values()[11] = (x2.values()[11] + 1) % 50; // last token of the first sequence
    const b = noGrad(() => m.forward(x2));
    assert.deepEqual(Array.from(b.values().subarray(0, 11 * 50)), Array.from(a.values().subarray(0, 11 * 50)));
    assert.notDeepEqual(Array.from(b.values().subarray(11 * 50, 12 * 50)), Array.from(a.values().subarray(11 * 50, 12 * 50)));
    const y = Int32Array.from(x.values(), (v) => (v + 1) % 50);
    const losses = fit(m, x, y, 12, 0.1);
    assert.ok(losses[losses.length - 1] < 0.6 * losses[0], `gpt2 loss ${losses.map((l) => l.toFixed(2)).join(' → ')}`);
  });

  it('bert-tiny: bidirectional (a later token changes earlier logits), ignored labels, learns', () => {
    const m = createModel(defaultSpec('bert-tiny', [10], 40), 3);
    assert.ok(m.namedParameters().some(([n]) => n === 'bert.encoder.layer.1.attention.self.query.weight'));
    const x = tokens(2, 10, 40, 4);
    const a = noGrad(() => m.forward(x));
    const x2 = Tensor.from(x.values(), x.shape);
    x2.values()[9] = (x2.values()[9] + 1) % 40;
    const b = noGrad(() => m.forward(x2));
    assert.notDeepEqual(Array.from(b.values().subarray(0, 40)), Array.from(a.values().subarray(0, 40)));
    const y = Int32Array.from(x.values(), (v, i) => (i % 3 === 0 ? v : -1));
    const losses = fit(m, x, y, 12, 0.1);
    assert.ok(losses[losses.length - 1] < 0.6 * losses[0], `bert loss ${losses.map((l) => l.toFixed(2)).join(' → ')}`);
  });

  it('resnet: torchvision names and running statistics; CIFAR stem at 32×32, ImageNet stem above 64', () => {
    const spec = defaultSpec('resnet18', [3, 16, 16], 4, { width: 8 });
    assert.equal(describeSpec(spec), 'resnet18 (cifar stem, width 8) 3×16×16 → 4');
    assert.equal((defaultSpec('resnet50', [3, 96, 96], 4) as { stem: string }).stem, 'imagenet');
    const m = createModel(spec, 5);
    const names = m.namedParameters().map(([n]) => n);
    for (const n of ['conv1.weight', 'bn1.weight', 'layer2.0.downsample.0.weight', 'layer2.0.downsample.1.bias', 'fc.weight']) {
      assert.ok(names.includes(n), n);
    }
    assert.ok(m.namedBuffers().some(([n]) => n === 'layer4.1.bn2.running_var'));
    const rng = new Rng(6);
    const x = Tensor.randn([4, 3, 16, 16], rng);
    const y = Int32Array.from([0, 1, 2, 3]);
    const losses = fit(m, x, y, 6, 0.05);
    assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `resnet loss ${losses.map((l) => l.toFixed(2)).join(' → ')}`);
    // Training moved the running statistics; eval mode uses them (deterministic, batch-independent).
    const one = noGrad(() => m.eval().forward(Tensor.from(x.values().subarray(0, 768), [1, 3, 16, 16])));
    const all = noGrad(() => m.forward(x));
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(one.values()[j] - all.values()[j]) < 1e-4);
  });

  it('bottleneck resnet50 at width 4 runs forward/backward with every parameter reached', () => {
    const m = createModel(defaultSpec('resnet50', [3, 8, 8], 3, { width: 4 }), 0);
    backward(crossEntropy(m.forward(Tensor.randn([2, 3, 8, 8], new Rng(1))), Int32Array.from([0, 2])));
    const { entries } = m.arena();
    const grad = m.arena().grads.readSync();
    for (const e of entries) assert.ok(grad.subarray(e.offset, e.offset + e.size).some((v) => v !== 0), e.name);
  });

  it('clear errors: too-long sequences, heads that do not divide the width, unknown depths, image models on tokens', () => {
    assert.throws(() => defaultSpec('gpt2-tiny', [200], 50, { context: 64 }), /200 tokens exceed --context 64/);
    assert.throws(() => defaultSpec('bert-tiny', [8], 50, { heads: 3 }), /width 128 is not divisible by 3 heads/);
    assert.throws(() => defaultSpec('resnet18', [3, 32, 32], 10, { layers: 20 }), /--layers 20 is not a ResNet depth/);
    assert.throws(() => defaultSpec('gpt2', [3, 32, 32], 10), /needs token inputs/);
    assert.equal((defaultSpec('gpt2-tiny', [300], 50) as { context: number }).context, 300);
  });
});

describe('model families: dropout', () => {
  /** How many 32-bit words the model's dropout stream gave in one forward pass (its state vs a copy's). */
  function drawsOf(m: Module, x: Tensor): number {
    const [, rng] = m.namedRngs().find(([n]) => n === 'drop.mask')!;
    const probe = new Rng(0);
    probe.setState(rng.getState());
    m.forward(x);
    const after = JSON.stringify(rng.getState());
    for (let n = 0; n < 1e6; n++) {
      if (JSON.stringify(probe.getState()) === after) return n;
      probe.nextUint32();
    }
    throw new Error('more than 1e6 draws');
  }

  for (const name of ['gpt2-tiny', 'bert-tiny'] as const) {
    it(`${name}: while training, dropout also drops attention probabilities (each mask keyed by two words of the stream); none in eval mode`, () => {
      const [N, T, vocab] = [2, 6, 30];
      const spec = { ...defaultSpec(name, [T], vocab), dropout: 0.1 } as ReturnType<typeof defaultSpec> & { layers: number; heads: number; width: number };
      const m = createModel(spec, 3);
      const x = tokens(N, T, vocab, 4);
      m.train();
      // Masks: GPT-2 drops the embeddings and 2 residual branches per layer, BERT the embeddings and
      // 2 outputs per layer; both drop each layer's attention probabilities (one mask for all heads).
      const masks = 1 + 2 * spec.layers + spec.layers;
      assert.equal(drawsOf(m, x), 2 * masks);
      m.eval();
      assert.equal(drawsOf(m, x), 0);
    });
  }
});
