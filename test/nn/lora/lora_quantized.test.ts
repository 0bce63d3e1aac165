/**
 * LoRA over a frozen quantized base (QLoRA's way): the base's products run on the quantized
 * kernels (forward and the input's gradient, through tiles dequantized in turn), and the adapters'
 * gradients equal those of LoRA on the dequantized float32 base — the same math, summed in another
 * order: within 1e-5 of the largest gradient, per format. The base gets no gradient.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyLora } from '../../../src/nn/lora/index.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { backward } from '../../../src/tensor/autograd.js';
import { withComputePrecision } from '../../../src/tensor/index.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { dequantize, quantize } from '../../../src/tensor/ops/quant.js';
import type { QuantType } from '../../../src/tensor/quant/formats.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

// Rows of 256 and 512 weights: whole blocks of every format (the K-quants' 256 included).
const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 64, context: 64, layers: 2, width: 256, intermediate: 512, heads: 4, kvHeads: 2, headDim: 64,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const PROJECTION = /^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$/;

/** The base with its projections in `type` (quantized: held in blocks; float: the blocks' values as float32), then LoRA on every projection. */
function adapted(type: QuantType, held: 'quantized' | 'float'): Module {
  const model = createModel(SPEC, 1);
  for (const [name, p] of model.namedParameters()) {
    if (!PROJECTION.test(name)) continue;
    const q = quantize(p, type);
    if (held === 'quantized') {
      p.requiresGrad = false;
      p.holdFrozen(q.storage);
    } else {
      p.storage.write(dequantize(q).values() as Float32Array);
    }
  }
  applyLora(model, { rank: 4, alpha: 8, dropout: 0, targets: TARGETS, seed: 7 });
  // B off zero (seeded alike), so every A has a gradient too.
  const rng = new Rng(3);
  for (const [n, p] of model.namedTrainable()) if (n.endsWith('lora_B.weight')) p.storage.write(Float32Array.from(p.values() as Float32Array, () => 0.05 * rng.normal()));
  return model;
}

/** Every adapter's gradient after one loss over `ids` [batch, seq]. */
function adapterGrads(model: Module, ids: Tensor): Map<string, Float32Array> {
  const targets = Int32Array.from({ length: ids.size }, (_, i) => (i * 5 + 1) % SPEC.vocabSize);
  backward(crossEntropy(model.forward(ids), targets));
  return new Map(model.namedTrainable().map(([n, p]) => [n, Float32Array.from(p.gradValues()!)]));
}

function tokens(batch: number, seq: number): Tensor {
  return Tensor.from(Array.from({ length: batch * seq }, (_, i) => (i * 7 + 2) % SPEC.vocabSize), [batch, seq]);
}

describe('LoRA over a quantized base', () => {
  it('under --precision bf16 the base\'s products take autocast\'s operands: the adapters\' gradients are bf16 LoRA\'s on the dequantized base, summed in another order', () => {
    const ids = tokens(2, 24);
    const want = withComputePrecision('bf16', () => adapterGrads(adapted('q4_0', 'float'), ids));
    const got = withComputePrecision('bf16', () => adapterGrads(adapted('q4_0', 'quantized'), ids));
    const fp32 = adapterGrads(adapted('q4_0', 'quantized'), ids);
    const largest = Math.max(...[...want.values()].map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    const apart = (a: Map<string, Float32Array>, name: string): number => {
      const [g, h] = [want.get(name)!, a.get(name)!];
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - h[i]));
      return worst;
    };
    let furthestFromFp32 = 0;
    for (const name of want.keys()) {
      // Same operands, float32 sums in another order: an activation that lands on the other side of
      // a bf16 rounding moves by one bf16 step (2^-8 relative), so a gradient may move by that much.
      assert.ok(apart(got, name) <= 2 ** -8 * largest, `${name}: ${apart(got, name)} from bf16 LoRA's (largest gradient ${largest})`);
      furthestFromFp32 = Math.max(furthestFromFp32, apart(fp32, name));
    }
    // ...and it is not the float32 step: that one is bf16's rounding away.
    assert.ok(furthestFromFp32 > 2 ** -8 * largest, `the float32 step's gradients are within ${furthestFromFp32} of bf16's`);
  });

  for (const type of ['q8_0', 'q4_0', 'q4_k', 'q6_k', 'mlx4', 'nf4'] as const) {
    for (const [batch, seq] of [[2, 24], [1, 6]] as const) {
      it(`${type}, ${batch}×${seq} tokens: the adapters' gradients equal LoRA's on the dequantized float32 base within 1e-5`, () => {
        const quantized = adapted(type, 'quantized');
        const got = adapterGrads(quantized, tokens(batch, seq));
        const want = adapterGrads(adapted(type, 'float'), tokens(batch, seq));
        assert.equal(got.size, 4 * TARGETS.length);
        const largest = Math.max(...[...want.values()].map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
        assert.ok(largest > 1e-4, `the gradients are not vanishing (${largest})`);
        for (const [name, g] of want) {
          const h = got.get(name)!;
          let worst = 0;
          for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - h[i]));
          assert.ok(worst <= 1e-5 * largest, `${name}: ${worst} apart (largest gradient ${largest})`);
        }
        for (const [name, p] of quantized.namedParameters()) if (PROJECTION.test(name)) assert.equal(p.grad, null, `${name} (${p.dtype}) has no gradient`);
      });
    }
  }
});
