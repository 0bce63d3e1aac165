import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hfConfigFromSpec, hfTokenIds, specFromHfConfig } from '../../../src/nn/interchange/hf_config.js';
import type { LlamaSpec } from '../../../src/nn/models/index.js';
import { ConfigError } from '../../../src/util/errors.js';

/** SmolLM2-135M's config.json (Hugging Face hub), trimmed of keys we do not read. */
const SMOLLM2 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, attention_dropout: 0, bos_token_id: 0, eos_token_id: 0,
  hidden_act: 'silu', hidden_size: 576, intermediate_size: 1536, max_position_embeddings: 8192, mlp_bias: false, num_attention_heads: 9,
  num_hidden_layers: 30, num_key_value_heads: 3, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, vocab_size: 49152,
};
/** Llama-3.2-1B's (rope_scaling under the old keys; eos a list in the instruct model). */
const LLAMA32 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 8192, num_attention_heads: 32, num_hidden_layers: 16,
  num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000.0, tie_word_embeddings: true, vocab_size: 128256,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
};
/** Qwen3-0.6B's, as transformers 5 writes it (rope_parameters). */
const QWEN3 = {
  architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', attention_bias: false, head_dim: 128, hidden_size: 1024, intermediate_size: 3072,
  max_position_embeddings: 40960, num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6,
  rope_parameters: { rope_theta: 1000000, rope_type: 'default' }, tie_word_embeddings: true, vocab_size: 151936, use_sliding_window: false,
  layer_types: Array(28).fill('full_attention'),
};
/** Qwen2.5-0.5B's (no attention_bias key: Qwen2 always has q/k/v biases). */
const QWEN25 = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864, max_position_embeddings: 32768,
  num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true,
  vocab_size: 151936, use_sliding_window: false, sliding_window: 32768,
};

const refused = (config: object, pattern: RegExp): void => {
  assert.throws(() => specFromHfConfig(config as Record<string, unknown>, 'm/config.json'), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /m\/config\.json/);
    assert.match(e.message, pattern);
    return true;
  });
};

/** mistralai/Mistral-7B-Instruct-v0.3's config.json. */
const MISTRAL = {
  architectures: ['MistralForCausalLM'], attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2, head_dim: 128, hidden_act: 'silu', hidden_size: 4096,
  initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 32768, model_type: 'mistral', num_attention_heads: 32,
  num_hidden_layers: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 1000000.0, sliding_window: null, tie_word_embeddings: false,
  torch_dtype: 'bfloat16', vocab_size: 32768,
};

describe('specFromHfConfig: the Llama family', () => {
  it('SmolLM2-135M: a tied plain Llama, head_dim from width / heads, rope_theta at the top', () => {
    assert.deepEqual(specFromHfConfig(SMOLLM2), {
      type: 'llama', modelType: 'llama', vocabSize: 49152, context: 8192, layers: 30, width: 576, intermediate: 1536, heads: 9, kvHeads: 3,
      headDim: 64, ropeTheta: 1e5, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
    } satisfies LlamaSpec);
  });

  it('Llama-3.2-1B: llama3 scaling from rope_scaling, and from rope_parameters alike', () => {
    const scaling = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 };
    const old = specFromHfConfig(LLAMA32) as LlamaSpec;
    assert.deepEqual(old.ropeScaling, scaling);
    assert.equal(old.ropeTheta, 5e5);
    const { rope_scaling: s, rope_theta: theta, ...rest } = LLAMA32;
    const fresh = specFromHfConfig({ ...rest, rope_parameters: { ...s, rope_theta: theta } });
    assert.deepEqual(fresh, old);
  });

  it('Qwen3-0.6B: q/k norms, head_dim 128 ≠ width / heads; Qwen2.5: q/k/v biases', () => {
    const q3 = specFromHfConfig(QWEN3) as LlamaSpec;
    assert.deepEqual([q3.modelType, q3.headDim, q3.qkNorm, q3.qkvBias, q3.ropeTheta], ['qwen3', 128, true, false, 1e6]);
    const q2 = specFromHfConfig(QWEN25) as LlamaSpec;
    assert.deepEqual([q2.modelType, q2.headDim, q2.qkNorm, q2.qkvBias, q2.kvHeads], ['qwen2', 64, false, true, 2]);
  });

  it('Mistral-7B-Instruct-v0.3: sliding_window null reads as Llama\'s math under model_type mistral, and writes back so', () => {
    const m = specFromHfConfig(MISTRAL) as LlamaSpec;
    assert.deepEqual([m.modelType, m.heads, m.kvHeads, m.headDim, m.qkvBias, m.qkNorm, m.ropeTheta, m.vocabSize], ['mistral', 32, 8, 128, false, false, 1e6, 32768]);
    const back = hfConfigFromSpec(m);
    assert.deepEqual([back.model_type, back.architectures, back.sliding_window], ['mistral', ['MistralForCausalLM'], null]);
    assert.deepEqual(specFromHfConfig(back as Record<string, unknown>), m);
    // A window as long as the model's positions is the whole window too; a shorter one is refused by name.
    assert.equal((specFromHfConfig({ ...MISTRAL, sliding_window: 32768 }) as LlamaSpec).modelType, 'mistral');
    refused({ ...MISTRAL, sliding_window: 4096 }, /\(sliding_window\).*4096 is not supported.*at least max_position_embeddings 32768/);
  });

  it('eos may be a list; bos and pad are read when present', () => {
    assert.deepEqual(hfTokenIds(LLAMA32), { bos: 128000, eos: [128001, 128008, 128009] });
    assert.deepEqual(hfTokenIds({ eos_token_id: 2, pad_token_id: null }), { eos: 2 });
    assert.throws(() => hfTokenIds({ eos_token_id: [1, 'x'] }, 'c.json'), /c\.json \(eos_token_id\[1\]\)/);
  });

  it('refuses what our Llama does not compute, naming the key', () => {
    refused({ ...SMOLLM2, attention_bias: true }, /\(attention_bias\).*o_proj/);
    refused({ ...SMOLLM2, hidden_act: 'gelu' }, /\(hidden_act\)/);
    refused({ ...SMOLLM2, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /\(rope_scaling\.rope_type\).*yarn/);
    refused({ ...QWEN25, use_sliding_window: true }, /\(use_sliding_window\)/);
    refused({ ...SMOLLM2, num_key_value_heads: 4 }, /9 attention heads do not divide into 4/);
    refused({ ...SMOLLM2, hidden_size: 'big' }, /\(hidden_size\).*positive integer/);
  });
});

describe('specFromHfConfig: GPT-2, BERT and what we do not build', () => {
  it('gpt2 (n_ctx of old files too) and bert', () => {
    assert.deepEqual(specFromHfConfig({ model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 }),
      { type: 'gpt2', vocabSize: 50257, context: 1024, layers: 12, width: 768, heads: 12, dropout: 0.1 });
    assert.equal((specFromHfConfig({ architectures: ['GPT2LMHeadModel'], vocab_size: 9, n_ctx: 32, n_embd: 8, n_layer: 1, n_head: 2 }) as { context: number }).context, 32);
    assert.deepEqual(specFromHfConfig({
      model_type: 'bert', vocab_size: 30522, max_position_embeddings: 512, num_hidden_layers: 2, hidden_size: 128, num_attention_heads: 2,
      intermediate_size: 512, hidden_dropout_prob: 0,
    }), { type: 'bert', vocabSize: 30522, context: 512, layers: 2, width: 128, heads: 2, intermediate: 512, dropout: 0 });
    refused({ model_type: 'gpt2', vocab_size: 9, n_positions: 32, n_embd: 8, n_layer: 1, n_head: 2, tie_word_embeddings: false }, /\(tie_word_embeddings\)/);
    refused({ model_type: 'bert', vocab_size: 9, max_position_embeddings: 8, num_hidden_layers: 1, hidden_size: 8, num_attention_heads: 2, intermediate_size: 8, hidden_act: 'relu' }, /\(hidden_act\)/);
  });

  it('an architecture we do not build is refused by model_type and architectures, not by missing tensors', () => {
    refused({ model_type: 'gemma', architectures: ['GemmaForCausalLM'], hidden_size: 8 }, /model_type "gemma" \(architectures \["GemmaForCausalLM"\]\) is not an architecture smolcluster builds; it reads gpt2, bert, llama, qwen2, qwen3, mixtral, mistral/);
    refused({ model_type: 'llama', architectures: ['LlamaForSequenceClassification'] }, /\(architectures\).*LlamaForSequenceClassification/);
    refused({}, /model_type undefined/);
  });
});

describe('hfConfigFromSpec', () => {
  it('writes what specFromHfConfig reads back, for every variant, with torch_dtype and the token ids', () => {
    for (const config of [SMOLLM2, LLAMA32, QWEN3, QWEN25] as Record<string, unknown>[]) {
      const spec = specFromHfConfig(config);
      const written = hfConfigFromSpec(spec, { dtype: 'bfloat16', tokens: hfTokenIds(config) });
      assert.deepEqual(specFromHfConfig(written), spec);
      assert.equal(written.torch_dtype, 'bfloat16');
      assert.deepEqual(written.architectures, config.architectures);
      assert.deepEqual(written.eos_token_id, config.eos_token_id);
    }
    const gpt2 = { type: 'gpt2', vocabSize: 61, context: 16, layers: 2, width: 32, heads: 4, dropout: 0 } as const;
    assert.deepEqual(specFromHfConfig(hfConfigFromSpec(gpt2)), gpt2);
    assert.throws(() => hfConfigFromSpec({ type: 'mlp', inputDim: 4, hidden: 8, out: 2 }), /mlp model has no Hugging Face config/);
  });
});
