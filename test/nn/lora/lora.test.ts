import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addLoraDelta, applyLora, freezeMatching, holdBaseInBf16, loraLayers, mergeLora, parameterPattern } from '../../../src/nn/lora/index.js';
import { type LlamaSpec, type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { backward } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

const LLAMA: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 37, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
};
const GPT2: ModelSpec = { type: 'gpt2', vocabSize: 37, context: 16, layers: 2, width: 16, heads: 2, dropout: 0 };
const IDS = Tensor.from(Array.from({ length: 12 }, (_, i) => (i * 7 + 2) % 37), [2, 6]);
const TARGETS = Int32Array.from({ length: 12 }, (_, i) => (i * 5 + 1) % 37);

/** Every trainable value moved off its start (B off zero), seeded. */
function perturbTrainable(model: Module, seed: number): void {
  const rng = new Rng(seed);
  for (const [, p] of model.namedTrainable()) p.storage.write(Float32Array.from(p.values() as Float32Array, (v) => v + 0.1 * rng.normal()));
}

function lossOf(model: Module): Tensor {
  return crossEntropy(model.forward(IDS), TARGETS);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('applyLora', () => {
  it('wraps the targets of every layer, keeps every name, and starts equal to the base (B = 0)', () => {
    const base = createModel(LLAMA, 1);
    const before = Float32Array.from(base.forward(IDS).values() as Float32Array);
    const names = base.namedParameters().map(([n]) => n);
    const wrapped = applyLora(base, { rank: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'] });
    assert.deepEqual(wrapped, ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    const after = base.namedParameters().map(([n]) => n);
    assert.deepEqual(after.filter((n) => !n.includes('lora_')), names, 'the base parameters keep their names and order');
    assert.deepEqual(base.namedTrainable().map(([n, p]) => [n, [...p.shape]]).slice(0, 2), [
      ['model.layers.0.self_attn.q_proj.lora_A.weight', [2, 16]], ['model.layers.0.self_attn.q_proj.lora_B.weight', [16, 2]],
    ]);
    assert.deepEqual(Float32Array.from(base.forward(IDS).values() as Float32Array), before);
  });

  it('trains the adapters only: the arena and the optimizer hold them, the base gets no gradient and does not move', () => {
    const model = createModel(LLAMA, 1);
    applyLora(model, { rank: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] });
    const adapters = 2 * 4 * (2 * 16 + 16 * 2) - 2 * 2 * (2 * 16 + 16 * 2) + 2 * 2 * (2 * 16 + 8 * 2);
    assert.equal(model.arena().size, adapters, 'q/o: 2·16 + 16·2 each, k/v (8 outputs): 2·16 + 8·2 each, two layers');
    const frozen = model.namedParameters().filter(([, p]) => !p.requiresGrad);
    const baseBefore = frozen.map(([, p]) => Float32Array.from(p.values() as Float32Array));
    const opt = makeOptimizer(model.arena(), { name: 'adamw', lr: 0.01 });
    assert.equal(opt.stateStorages().reduce((n, s) => n + s.size, 0), 2 * adapters, 'AdamW keeps two moments of the adapters only');
    model.zeroGrad();
    backward(lossOf(model));
    for (const [n, p] of frozen) assert.equal(p.grad, null, `${n} has no gradient`);
    const bGrad = model.namedTrainable().find(([n]) => n.endsWith('q_proj.lora_B.weight'))![1].gradValues()!;
    assert.ok(maxAbsDiff(bGrad, new Float32Array(bGrad.length)) > 0, 'B gets a gradient');
    opt.step();
    frozen.forEach(([n, p], i) => assert.deepEqual(Float32Array.from(p.values() as Float32Array), baseBefore[i], `${n} unchanged`));
  });

  it("gives A and B the gradients of the merged weight's: dB = s·G Aᵀ, dA = s·Bᵀ G", async () => {
    const model = createModel(LLAMA, 2);
    applyLora(model, { rank: 3, alpha: 6, dropout: 0, targets: ['o_proj'] });
    perturbTrainable(model, 5);
    model.zeroGrad();
    backward(lossOf(model));
    const merged = await mergeLora(model, LLAMA);
    merged.zeroGrad();
    backward(lossOf(merged));
    const G = new Map(merged.namedParameters()).get('model.layers.1.self_attn.o_proj.weight')!.gradValues() as Float32Array;
    const layer = new Map(loraLayers(model)).get('model.layers.1.self_attn.o_proj')!;
    const [A, B] = [layer.lora_A.weight.values() as Float32Array, layer.lora_B.weight.values() as Float32Array];
    const [r, inF, out, s] = [3, 16, 16, 2];
    const dB = new Float32Array(out * r);
    const dA = new Float32Array(r * inF);
    for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) for (let i = 0; i < inF; i++) {
      dB[o * r + k] += s * G[o * inF + i] * A[k * inF + i];
      dA[k * inF + i] += s * B[o * r + k] * G[o * inF + i];
    }
    assert.ok(maxAbsDiff(layer.lora_B.weight.gradValues()!, dB) < 1e-5);
    assert.ok(maxAbsDiff(layer.lora_A.weight.gradValues()!, dA) < 1e-5);
  });

  it('mergeLora gives a plain model with the adapted logits (GPT-2 and Llama)', async () => {
    for (const [spec, targets] of [[GPT2, ['c_attn', 'c_fc']], [LLAMA, ['q_proj', 'down_proj']]] as const) {
      const model = createModel(spec, 3);
      applyLora(model, { rank: 2, alpha: 3, dropout: 0, targets });
      perturbTrainable(model, 6);
      const adapted = model.forward(IDS).values() as Float32Array;
      const merged = await mergeLora(model, spec);
      assert.equal(loraLayers(merged).length, 0);
      assert.ok(maxAbsDiff(merged.forward(IDS).values(), adapted) < 1e-5, spec.type);
    }
  });

  it('dropout drops the adapter input while training only', () => {
    const model = createModel(LLAMA, 4);
    applyLora(model, { rank: 2, alpha: 4, dropout: 0.5, targets: ['q_proj'] });
    perturbTrainable(model, 7);
    const plain = createModel(LLAMA, 4);
    applyLora(plain, { rank: 2, alpha: 4, dropout: 0, targets: ['q_proj'] });
    perturbTrainable(plain, 7);
    model.train(false);
    plain.train(false);
    assert.deepEqual(model.forward(IDS).values(), plain.forward(IDS).values());
    model.train(true);
    assert.ok(maxAbsDiff(model.forward(IDS).values(), plain.forward(IDS).values()) > 1e-4);
  });

  it('holds the base in bf16: logits within bf16 rounding, the adapters still train in float32', () => {
    const model = createModel(LLAMA, 5);
    applyLora(model, { rank: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'] });
    perturbTrainable(model, 8);
    const fp32 = Float32Array.from(model.forward(IDS).values() as Float32Array);
    assert.equal(holdBaseInBf16(model), 2 * 2 * (16 * 16 + 8 * 16));
    assert.equal(loraLayers(model)[0][1].weight.dtype, 'bfloat16');
    const logits = model.forward(IDS);
    assert.ok(maxAbsDiff(logits.values(), fp32) < 0.05 * maxAbsDiff(fp32, new Float32Array(fp32.length)));
    model.zeroGrad();
    backward(crossEntropy(logits, TARGETS));
    for (const [n, p] of model.namedTrainable()) assert.ok(p.gradValues()!.some((g) => g !== 0), `${n} has a gradient`);
  });

  it('all-linear (PEFT\'s target_modules) wraps every Linear layer but the head: Llama\'s seven projections, GPT-2\'s four', () => {
    const llama = createModel(LLAMA, 0);
    const wrapped = applyLora(llama, { rank: 2, alpha: 4, dropout: 0, targets: ['all-linear'] });
    const leaves = [...new Set(wrapped.map((n) => n.slice(n.lastIndexOf('.') + 1)))].sort();
    assert.deepEqual(leaves, ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    assert.equal(wrapped.length, 7 * LLAMA.layers);
    assert.ok(!wrapped.includes('lm_head'));
    assert.deepEqual([...new Set(applyLora(createModel(GPT2, 0), { rank: 2, alpha: 4, dropout: 0, targets: ['all-linear'] }).map((n) => n.slice(n.lastIndexOf('.') + 1)))].sort(), ['c_attn', 'c_fc', 'c_proj']);
    assert.throws(() => applyLora(createModel(LLAMA, 0), { rank: 2, alpha: 4, dropout: 0, targets: ['all-linear', 'q_proj'] }), /all-linear stands alone/);
  });

  it('refuses a target no module has, and one that is not a Linear, by name', () => {
    assert.throws(() => applyLora(createModel(LLAMA, 0), { rank: 2, alpha: 4, dropout: 0, targets: ['qproj'] }), /--lora-targets: no module of the model is named qproj \(its Linear layers are named q_proj, k_proj/);
    assert.throws(() => applyLora(createModel(LLAMA, 0), { rank: 2, alpha: 4, dropout: 0, targets: ['self_attn'] }), /model\.layers\.0\.self_attn is a LlamaAttention, not a Linear/);
    assert.throws(() => applyLora(createModel(LLAMA, 0), { rank: 0, alpha: 4, dropout: 0, targets: ['q_proj'] }), /--lora-rank/);
  });

  it('addLoraDelta adds s·B A to W', () => {
    const w = Float32Array.of(1, 2, 3, 4, 5, 6); // [2, 3]
    addLoraDelta(w, Float32Array.of(1, 0, 2), Float32Array.of(3, -1), 2, 3, 1, 0.5);
    assert.deepEqual([...w], [2.5, 2, 6, 3.5, 5, 5]);
  });
});

describe('freezeMatching (--freeze)', () => {
  it('globs and /regex/ pick parameters by name; frozen ones leave the arena', () => {
    assert.ok(parameterPattern('model.layers.*.mlp.*.weight')('model.layers.1.mlp.up_proj.weight'));
    assert.ok(!parameterPattern('model.layers.*.weight')('model.layers.1.mlp.up_proj.weight'));
    assert.ok(parameterPattern('**.embed_tokens.weight')('model.embed_tokens.weight'));
    assert.ok(parameterPattern('/layers\\.0\\./')('model.layers.0.mlp.up_proj.weight'));
    const model = createModel(LLAMA, 1);
    const total = model.numParameters();
    const frozen = freezeMatching(model, 'model.embed_tokens.weight,/layers\\.0\\./');
    assert.equal(frozen.length, 1 + 9);
    const frozenSize = model.namedParameters().filter(([n]) => frozen.includes(n)).reduce((n, [, p]) => n + p.size, 0);
    assert.equal(model.arena().size, total - frozenSize);
    model.zeroGrad();
    backward(lossOf(model));
    assert.equal(new Map(model.namedParameters()).get('model.embed_tokens.weight')!.grad, null);
  });

  it('refuses a pattern that matches nothing, and freezing after the arena exists', () => {
    assert.throws(() => freezeMatching(createModel(LLAMA, 1), 'model.layer.*'), /--freeze: model\.layer\.\* matches no parameter/);
    const model = createModel(LLAMA, 1);
    model.arena();
    assert.throws(() => freezeMatching(model, 'model.norm.weight'), /arena is already built/);
  });
});
