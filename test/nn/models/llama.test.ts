/**
 * The llama family (nn/models/llama.ts): Hugging Face's parameter names and shapes, grouped-query
 * projections (k/v with the kv heads only), tied or untied head, each variant (Llama, Qwen2's q/k/v
 * biases, Qwen3's q/k norms, Llama 3's rope scaling) forward and backward, causality, the layer
 * list, and the presets' sizes against transformers' num_parameters(). The numbers themselves are
 * checked against transformers in llama_torch.test.ts.
 */
import assert from 'node:assert/strict';
import { describe as plainDescribe, it as plainIt } from 'node:test';
import { describe, it } from '../../helpers/per_backend.js';
import { canonicalModel } from '../../../src/config/spellings.js';
import { modelLayers, runLayers } from '../../../src/nn/layer_list.js';
import { settled } from '../../../src/nn/layers/maybe_async.js';
import { type LlamaSpec, LLAMA_MODELS, LLAMA_SIZES, SGD, createModel, defaultSpec, describeSpec, isTokenModel, llamaSpec } from '../../../src/nn/index.js';
import type { Module } from '../../../src/nn/module.js';
import { backward, noGrad } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

const VOCAB = 40;
const T = 10;
const tiny = (over: Partial<LlamaSpec> = {}): LlamaSpec => ({ ...llamaSpec('llama-tiny', VOCAB, T), ...over });

/** The four variants of one family, each on the tiny shape. */
const VARIANTS: [string, LlamaSpec][] = [
  ['llama (untied)', tiny()],
  ['qwen2 (q/k/v biases, tied)', tiny({ modelType: 'qwen2', qkvBias: true, tieEmbeddings: true })],
  ['qwen3 (q/k norms, head_dim 32 ≠ width / heads, tied)', tiny({ modelType: 'qwen3', qkNorm: true, headDim: 32, tieEmbeddings: true })],
  ['llama 3 (rope scaling)', tiny({ ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 } })],
];

function tokens(n: number, t: number, seed: number): Tensor {
  const rng = new Rng(seed);
  return Tensor.from(Array.from({ length: n * t }, () => rng.int(VOCAB)), [n, t]);
}

function shapes(m: Module): Map<string, number[]> {
  return new Map(m.namedParameters().map(([n, p]) => [n, [...p.shape]]));
}

describe('llama family: names and shapes', () => {
  it('llama-tiny: Hugging Face\'s names in its order, k/v projections of the kv heads only, an lm_head of its own', () => {
    const spec = defaultSpec('llama-tiny', [T], VOCAB);
    assert.equal(describeSpec(spec), 'llama 2L×64 4H/2KV×16 mlp 128 ctx 128 vocab 40');
    const got = shapes(createModel(spec, 1));
    const layer = (i: number): [string, number[]][] => [
      [`model.layers.${i}.self_attn.q_proj.weight`, [64, 64]],
      [`model.layers.${i}.self_attn.k_proj.weight`, [32, 64]],
      [`model.layers.${i}.self_attn.v_proj.weight`, [32, 64]],
      [`model.layers.${i}.self_attn.o_proj.weight`, [64, 64]],
      [`model.layers.${i}.mlp.gate_proj.weight`, [128, 64]],
      [`model.layers.${i}.mlp.up_proj.weight`, [128, 64]],
      [`model.layers.${i}.mlp.down_proj.weight`, [64, 128]],
      [`model.layers.${i}.input_layernorm.weight`, [64]],
      [`model.layers.${i}.post_attention_layernorm.weight`, [64]],
    ];
    assert.deepEqual([...got], [
      ['model.embed_tokens.weight', [VOCAB, 64]], ...layer(0), ...layer(1), ['model.norm.weight', [64]], ['lm_head.weight', [VOCAB, 64]],
    ]);
  });

  it('qwen2 adds q/k/v biases (not o_proj\'s); qwen3 adds q_norm and k_norm of head_dim; tied models have no lm_head', () => {
    const qwen2 = shapes(createModel(VARIANTS[1][1], 1));
    assert.deepEqual(qwen2.get('model.layers.0.self_attn.q_proj.bias'), [64]);
    assert.deepEqual(qwen2.get('model.layers.0.self_attn.k_proj.bias'), [32]);
    assert.deepEqual(qwen2.get('model.layers.0.self_attn.v_proj.bias'), [32]);
    assert.ok(!qwen2.has('model.layers.0.self_attn.o_proj.bias') && !qwen2.has('lm_head.weight'));
    const qwen3 = shapes(createModel(VARIANTS[2][1], 1));
    assert.deepEqual(qwen3.get('model.layers.1.self_attn.q_norm.weight'), [32]);
    assert.deepEqual(qwen3.get('model.layers.1.self_attn.k_norm.weight'), [32]);
    assert.deepEqual(qwen3.get('model.layers.1.self_attn.q_proj.weight'), [4 * 32, 64]);
    assert.deepEqual(qwen3.get('model.layers.1.self_attn.o_proj.weight'), [64, 4 * 32]);
    assert.ok(![...qwen3.keys()].some((n) => n.endsWith('.bias')));
  });

  it('Hugging Face\'s initialisation: weights N(0, 0.02), biases 0, norms 1; the seed alone decides', () => {
    const m = createModel(VARIANTS[2][1], 3);
    const params = new Map(m.namedParameters());
    const q = Array.from(params.get('model.layers.0.self_attn.q_proj.weight')!.values());
    const std = Math.sqrt(q.reduce((s, v) => s + v * v, 0) / q.length);
    assert.ok(Math.abs(std - 0.02) < 0.002, `q_proj std ${std}`);
    assert.ok(params.get('model.layers.0.self_attn.q_norm.weight')!.values().every((v) => v === 1));
    assert.ok(params.get('model.norm.weight')!.values().every((v) => v === 1));
    const qwen2 = new Map(createModel(VARIANTS[1][1], 3).namedParameters());
    assert.ok(qwen2.get('model.layers.0.self_attn.k_proj.bias')!.values().every((v) => v === 0));
    assert.deepEqual(createModel(VARIANTS[2][1], 3).namedParameters()[5][1].values(), m.namedParameters()[5][1].values());
  });
});

describe('llama family: forward and backward', () => {
  for (const [name, spec] of VARIANTS) {
    it(`${name}: logits [N, T, vocab], a gradient on every parameter, causal, learns`, () => {
      const m = createModel(spec, 2);
      const x = tokens(2, T, 4);
      const logits = m.forward(x);
      assert.deepEqual(logits.shape, [2, T, VOCAB]);
      const y = Int32Array.from(x.values(), (v) => (v * 3 + 1) % VOCAB);
      backward(crossEntropy(logits, y));
      for (const [param, p] of m.namedParameters()) {
        const g = p.gradValues()!;
        assert.ok(g.every(Number.isFinite) && g.some((v) => v !== 0), `${param} has no gradient`);
      }
      // A later token never changes an earlier position's logits; it changes its own.
      const x2 = Tensor.from(x.values(), x.shape);
      x2.values()[T - 1] = (x2.values()[T - 1] + 1) % VOCAB;
      const [a, b] = [noGrad(() => m.forward(x)).values(), noGrad(() => m.forward(x2)).values()];
      assert.deepEqual(Array.from(b.subarray(0, (T - 1) * VOCAB)), Array.from(a.subarray(0, (T - 1) * VOCAB)));
      assert.notDeepEqual(Array.from(b.subarray((T - 1) * VOCAB, T * VOCAB)), Array.from(a.subarray((T - 1) * VOCAB, T * VOCAB)));
      const opt = new SGD(m.arena(), { lr: 0.1, momentum: 0.9 });
      const losses: number[] = [];
      for (let i = 0; i < 20; i++) {
        m.zeroGrad();
        const loss = crossEntropy(m.forward(x), y);
        losses.push(loss.item());
        backward(loss);
        opt.step();
      }
      assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `${name} loss ${losses.map((l) => l.toFixed(2)).join(' → ')}`);
    });
  }

  it('a tied head sends its gradient into every row of model.embed_tokens; an untied one only into the rows read', () => {
    const x = Tensor.from([1, 2, 3, 1], [1, 4]);
    const y = Int32Array.from([2, 3, 1, 2]);
    const rowGrads = (spec: LlamaSpec): number[] => {
      const m = createModel(spec, 5);
      backward(crossEntropy(m.forward(x), y));
      const g = m.namedParameters()[0][1].gradValues()!;
      return Array.from({ length: VOCAB }, (_, r) => Math.max(...Array.from(g.subarray(r * 64, r * 64 + 64), Math.abs)));
    };
    assert.ok(rowGrads(tiny({ tieEmbeddings: true })).every((v) => v > 0));
    const untied = rowGrads(tiny());
    assert.ok(untied[1] > 0 && untied[0] === 0 && untied[VOCAB - 1] === 0);
  });

  it('dropout: masks while training only, and a spec it cannot build is refused by field', () => {
    const m = createModel(tiny({ dropout: 0.3 }), 2);
    const x = tokens(1, T, 6);
    m.eval();
    const evalA = noGrad(() => m.forward(x)).values();
    assert.deepEqual(noGrad(() => m.forward(x)).values(), evalA);
    m.train();
    assert.notDeepEqual(noGrad(() => m.forward(x)).values(), evalA);
    assert.throws(() => createModel(tiny({ kvHeads: 3 }), 0), /llama: 4 attention heads do not divide into 3 key\/value heads \(num_key_value_heads\)/);
    assert.throws(() => createModel(tiny({ headDim: 15 }), 0), /head_dim 15 must be even/);
    assert.throws(() => createModel(tiny({ modelType: 'qwen3', rmsEps: 0 }), 0), /qwen3: rms_norm_eps must be positive/);
    assert.throws(() => createModel(tiny(), 0).forward(tokens(1, 129, 0)), /sequence length 129 exceeds the model's 128 positions \(max_position_embeddings\)/);
  });

  it('the layer list: the embedding, each block, the final norm with the head (tied to the embedding when tied); chained, the forward\'s bits', () => {
    for (const [spec, tied] of [[tiny(), false], [VARIANTS[2][1], true]] as const) {
      const m = createModel(spec, 3);
      const layers = modelLayers(m);
      assert.deepEqual(layers.map((l) => l.name), ['model.embed_tokens', 'model.layers.0', 'model.layers.1', 'model.norm+lm_head']);
      assert.equal(layers[3].tied?.name, tied ? 'model.embed_tokens.weight' : undefined);
      assert.deepEqual(layers[3].modules.map(([n]) => n), tied ? ['model.norm'] : ['model.norm', 'lm_head']);
      const ids = tokens(2, T, 7);
      assert.deepEqual(settled(runLayers(layers, ids), 'test').values(), m.forward(ids).values());
    }
  });
});

plainDescribe('llama family: presets and names', () => {
  // transformers 5.18: XForCausalLM(config).num_parameters() on the meta device, for each config.json's shape.
  const PUBLISHED: Record<string, number> = {
    'smollm2-135m': 134_515_008, 'smollm2-360m': 361_821_120, 'qwen2.5-0.5b': 494_032_768, 'qwen3-0.6b': 596_049_920, 'llama-3.2-1b': 1_235_814_400,
  };
  for (const [name, params] of Object.entries(PUBLISHED)) {
    // One layer with a one-token vocabulary, scaled to the preset's layers and vocabulary (the heads are tied).
    plainIt(`${name}: ${params.toLocaleString('en')} parameters, as transformers counts`, () => {
      const s = LLAMA_SIZES[name as keyof typeof LLAMA_SIZES];
      const one = createModel(defaultSpec(name as never, [1], 1, { layers: 1 }), 0).numParameters();
      assert.equal(one + (s.layers - 1) * (one - 2 * s.width) + (s.vocabSize - 1) * s.width, params);
    });
  }

  plainIt('the CLI\'s names: token models, spelled freely', () => {
    for (const name of LLAMA_MODELS) assert.ok(isTokenModel(name), name);
    assert.equal(canonicalModel('Qwen2.5-0.5B'), 'qwen2.5-0.5b');
    assert.equal(canonicalModel('SmolLM2_135M'), 'smollm2-135m');
    assert.equal(canonicalModel('Llama-3.2-1B'), 'llama-3.2-1b');
  });

  plainIt('--layers, --width, --heads, --context override a preset; kv heads follow the heads', () => {
    const s = llamaSpec('smollm2-135m', 100, 64, { layers: 2, width: 96, heads: 6 });
    assert.deepEqual([s.layers, s.width, s.heads, s.kvHeads, s.headDim, s.intermediate, s.vocabSize], [2, 96, 6, 3, 16, 256, 100]);
    assert.equal(llamaSpec('llama-3.2-1b', 100, 64, { heads: 4, width: 64 }).kvHeads, 1);
    assert.equal(llamaSpec('llama-tiny', 100, 300).context, 300);
    assert.equal(llamaSpec('llama-tiny', 100, 64, { context: 96 }).context, 96);
    assert.throws(() => llamaSpec('qwen2.5-0.5b', 100, 64, { heads: 5, width: 80 }), /qwen2.5-0.5b: --heads 5 divides neither into the preset's 2 kv heads nor into groups of 7 queries per kv head/);
    assert.throws(() => llamaSpec('llama-tiny', 100, 64, { width: 62 }), /llama-tiny: width 62 is not divisible by 4 heads/);
  });
});
