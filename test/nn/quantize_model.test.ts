/**
 * `--quantize` at load (src/nn/quantize_model.ts): which format each weight takes — llama.cpp's
 * Q4_K_M mix and its fallbacks, mlx-lm's groups — and a model quantized where it stands: its
 * matrices hold blocks only, its norms stay float32, and its logits follow the float32 model's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type LlamaSpec, createModel, llamaSpec } from '../../src/nn/index.js';
import { formatFor, quantizationPlan, quantizeModel, useMoreBits } from '../../src/nn/quantize_model.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { Tensor } from '../../src/tensor/tensor.js';

const VOCAB = 64;
const spec = (over: Partial<LlamaSpec>): LlamaSpec => ({ ...llamaSpec('llama-tiny', VOCAB, 16), ...over });

function logits(model: ReturnType<typeof createModel>, ids: Int32Array): Float32Array {
  return noGrad(() => (model.forward(Tensor.fromHost(ids, [1, ids.length])) as Tensor).values() as Float32Array);
}

describe('quantization plan', () => {
  it('useMoreBits picks llama.cpp\'s layers: the first and last eighth, and every third between', () => {
    const picked = Array.from({ length: 24 }, (_, i) => i).filter((i) => useMoreBits(i, 24));
    assert.deepEqual(picked, [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
  });

  it('q4_k_m on rows of whole 256-blocks: Q4_K, with attn_v and ffn_down Q6_K in the picked layers, and the head Q6_K', () => {
    const s = spec({ layers: 8, width: 256, intermediate: 512, heads: 4, kvHeads: 2, headDim: 64, tieEmbeddings: false });
    const plan = quantizationPlan(createModel(s, 1), s, 'q4_k_m');
    assert.equal(plan.get('lm_head.weight'), 'q6_k');
    assert.equal(plan.get('model.embed_tokens.weight'), 'q4_k');
    for (let i = 0; i < 8; i++) {
      const more = useMoreBits(i, 8) ? 'q6_k' : 'q4_k';
      assert.equal(plan.get(`model.layers.${i}.self_attn.v_proj.weight`), more, `layer ${i} v_proj`);
      assert.equal(plan.get(`model.layers.${i}.mlp.down_proj.weight`), more, `layer ${i} down_proj`);
      assert.equal(plan.get(`model.layers.${i}.self_attn.q_proj.weight`), 'q4_k');
      assert.equal(plan.get(`model.layers.${i}.mlp.up_proj.weight`), 'q4_k');
      assert.equal(plan.has(`model.layers.${i}.input_layernorm.weight`), false, 'norms stay float32');
    }
  });

  it('q4_k_m on Qwen2.5\'s rows (896, not whole 256-blocks) falls back as llama.cpp does: Q5_0, the tied head Q8_0, ffn_down (4864) still K-quant', () => {
    assert.equal(formatFor('q4_k_m', 'other', 3, 24, 896), 'q5_0');
    assert.equal(formatFor('q4_k_m', 'attn_v', 0, 24, 896), 'q8_0');
    assert.equal(formatFor('q4_k_m', 'output', 0, 24, 896), 'q8_0');
    assert.equal(formatFor('q4_k_m', 'ffn_down', 3, 24, 4864), 'q4_k');
    assert.equal(formatFor('q4_k_m', 'ffn_down', 2, 24, 4864), 'q6_k');
    assert.equal(formatFor('q4_0', 'output', 0, 24, 2048), 'q6_k');
    assert.equal(formatFor('q4_0', 'other', 0, 24, 2048), 'q4_0');
    assert.equal(formatFor('q8_0', 'output', 0, 24, 896), 'q8_0');
    assert.equal(formatFor('mlx4', 'other', 0, 24, 896), 'mlx4');
    assert.equal(formatFor('mlx4', 'other', 0, 24, 96), null, 'a row that is not whole groups of 64 stays float32, as in mlx-lm');
    assert.throws(() => formatFor('q8_0', 'other', 0, 24, 48), /a row of 48 weights is not whole q8_0 blocks/);
  });

  it('q5_k_m is q4_k_m with Q5_K (llama.cpp\'s Q5_K_M): Q6_K where q4_k_m has it, Q5_1 where rows are not whole 256-blocks', () => {
    const s = spec({ layers: 8, width: 256, intermediate: 512, heads: 4, kvHeads: 2, headDim: 64, tieEmbeddings: false });
    const [q4, q5] = (['q4_k_m', 'q5_k_m'] as const).map((scheme) => quantizationPlan(createModel(s, 1), s, scheme));
    for (const [name, type] of q4) assert.equal(q5.get(name), type === 'q4_k' ? 'q5_k' : type, name);
    assert.equal(q5.get('model.layers.3.self_attn.q_proj.weight'), 'q5_k');
    assert.equal(formatFor('q5_k_m', 'other', 3, 24, 896), 'q5_1');
    assert.equal(formatFor('q5_k_m', 'ffn_down', 2, 24, 4864), 'q6_k');
    assert.equal(formatFor('q5_k_m', 'output', 0, 24, 896), 'q8_0');
  });

  it('nf4 (QLoRA\'s base): every matrix of the layers NF4, the embedding and the head float32', () => {
    const s = spec({ layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16, tieEmbeddings: false });
    const plan = quantizationPlan(createModel(s, 1), s, 'nf4');
    assert.equal(plan.get('lm_head.weight'), null);
    assert.equal(plan.get('model.embed_tokens.weight'), null);
    for (const m of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']) {
      assert.equal(plan.get(`model.layers.1.${m}.weight`), 'nf4', m);
    }
    assert.equal(formatFor('nf4', 'other', 0, 24, 96), null, 'a row that is not whole blocks of 64 stays float32');
  });
});

describe('a model quantized at load', () => {
  const s = spec({ layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16, tieEmbeddings: true, modelType: 'qwen2', qkvBias: true });
  const ids = Int32Array.from([3, 17, 5, 60, 2, 9, 41, 8]);

  // Bounds: twice the relative error seeds 7-9 gave on this shape (q8_0 0.008-0.010, q4_0 0.08-0.10,
  // q4_k_m 0.032-0.034 (mostly Q5_0 and Q8_0 at width 64), mlx4 0.13-0.17, mlx8 0.008, nf4 0.095-0.104,
  // its tied embedding left float32): each weight's
  // rounding is a step over √12, a step being 1/127 of a block's range at 8 bits and 1/15 at 4.
  for (const [scheme, bound] of [['q8_0', 0.02], ['q4_0', 0.2], ['q4_k_m', 0.07], ['mlx4', 0.33], ['mlx8', 0.02], ['nf4', 0.2]] as const) {
    it(`${scheme}: matrices hold only their blocks, norms and biases stay float32, the logits follow float32's (relative error ≤ ${bound})`, () => {
      const model = createModel(s, 7);
      const before = logits(model, ids);
      const q = quantizeModel(model, s, scheme);
      const params = new Map(model.namedParameters());
      for (const [name, type] of q.types) {
        const p = params.get(name)!;
        assert.equal(p.dtype, type, name);
        assert.equal(p.requiresGrad, false);
        assert.ok(p.storage.byteLength < p.size * 4 / 3, `${name} holds ${p.storage.byteLength} bytes for ${p.size} weights`);
      }
      assert.equal(params.get('model.layers.0.self_attn.q_proj.bias')!.dtype, 'float32');
      assert.equal(params.get('model.norm.weight')!.dtype, 'float32');
      assert.ok(q.bytesAfter < q.bytesBefore / 3, `${q.bytesAfter} of ${q.bytesBefore} bytes`);
      const after = logits(model, ids);
      let [diff, norm] = [0, 0];
      for (let i = 0; i < before.length; i++) [diff, norm] = [diff + (after[i] - before[i]) ** 2, norm + before[i] ** 2];
      const rel = Math.sqrt(diff / norm);
      assert.ok(rel > 0 && rel <= bound, `relative error ${rel}`);
    });
  }

  it('refuses a model that already trains (its arena is built): it keeps float32 masters', () => {
    const model = createModel(s, 7);
    model.arena();
    assert.throws(() => quantizeModel(model, s, 'q8_0'), /freeze parameters before training starts/);
  });
});
