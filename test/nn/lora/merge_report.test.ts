/**
 * Merging LoRA over a quantized base (nn/lora/apply.ts mergeLora, nn/lora/merge_report.ts): the
 * merged weights are the dequantized base plus B A, exactly; and the report of how much of the
 * adapters' change a format keeps says what mlx-lm users found: requantized into 4-bit blocks, a
 * change below one quantization step is rounded away, while bf16 and Q8_0 keep it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addLoraDelta, applyLora, loraLayers, mergeLora } from '../../../src/nn/lora/index.js';
import { mergeKept } from '../../../src/nn/lora/merge_report.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { dequantize, quantize } from '../../../src/tensor/ops/quant.js';
import { Rng } from '../../../src/util/rng.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 64, context: 32, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};

/** The base with q and v in Q4_0, and LoRA on them whose B is `size` times a normal draw. */
function adapted(size: number, quantized = true): Module {
  const model = createModel(SPEC, 1);
  for (const [name, p] of model.namedParameters()) {
    if (!quantized || !/(q_proj|v_proj)\.weight$/.test(name)) continue;
    p.requiresGrad = false;
    p.holdFrozen(quantize(p, 'q4_0').storage);
  }
  applyLora(model, { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], seed: 3 });
  const rng = new Rng(5);
  for (const [n, p] of model.namedTrainable()) if (n.endsWith('lora_B.weight')) p.storage.write(Float32Array.from(p.values() as Float32Array, () => size * rng.normal()));
  return model;
}

describe('merging LoRA over a quantized base', () => {
  it('mergeLora: the dequantized base plus (alpha / r) B A, as a float model', async () => {
    const model = adapted(0.01);
    const merged = new Map((await mergeLora(model, SPEC)).namedParameters());
    for (const [name, layer] of loraLayers(model)) {
      const want = Float32Array.from(dequantize(layer.weight).values() as Float32Array);
      addLoraDelta(want, layer.lora_A.weight.values() as Float32Array, layer.lora_B.weight.values() as Float32Array, layer.outFeatures, layer.inFeatures, 4, layer.scaling);
      const got = merged.get(`${name}.weight`)!;
      assert.equal(got.dtype, 'float32');
      assert.deepEqual(got.values(), want, name);
    }
  });

  it('a change below a 4-bit step is rounded away when requantized; bf16 and Q8_0 keep it', async () => {
    const [small, large] = [await mergeKept(adapted(0.002), ['base', 'bfloat16', 'q8_0']), await mergeKept(adapted(0.5), ['base'])];
    const kept = (r: { target: string; kept: number }[], t: string): number => r.find((k) => k.target === t)!.kept;
    assert.ok(kept(small, 'base') < 0.25, `q4_0 keeps ${kept(small, 'base')} of a small change`);
    assert.ok(kept(small, 'bfloat16') > 0.9, `bf16 keeps ${kept(small, 'bfloat16')}`);
    assert.ok(kept(small, 'q8_0') > 0.9, `q8_0 keeps ${kept(small, 'q8_0')}`);
    assert.ok(kept(large, 'base') > 0.9, `q4_0 keeps ${kept(large, 'base')} of a change of many steps`);
    const float = await mergeKept(adapted(0.002, false), ['base']);
    assert.ok(Math.abs(float[0].kept - 1) < 1e-3, `a float32 base keeps the change whole (but float32's own rounding): ${float[0].kept}`);
  });
});
