/**
 * Mixtral's config.json ⇄ LlamaSpec (nn/interchange/hf_config_llama.ts): the experts, top k and the
 * load-balancing loss's weight (which transformers applies only with output_router_logits), a
 * round trip, and the settings our model does not have refused with the file and field named.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hfConfigFromSpec, specFromHfConfig } from '../../../src/nn/interchange/hf_config.js';
import { type LlamaSpec, describeSpec, llamaSpec } from '../../../src/nn/models/index.js';

/** Mixtral-8x7B-v0.1's config.json (Hugging Face hub), trimmed of keys we do not read. */
const MIXTRAL = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
  hidden_size: 4096, intermediate_size: 14336, max_position_embeddings: 32768, num_attention_heads: 32, num_experts_per_tok: 2,
  num_hidden_layers: 32, num_key_value_heads: 8, num_local_experts: 8, output_router_logits: false, rms_norm_eps: 1e-5, rope_theta: 1e6,
  router_aux_loss_coef: 0.02, sliding_window: null, tie_word_embeddings: false, vocab_size: 32000,
};

describe('mixtral config.json', () => {
  it('reads the experts; without output_router_logits the load-balancing loss weighs 0, as in transformers', () => {
    const spec = specFromHfConfig(MIXTRAL) as LlamaSpec;
    assert.equal(spec.modelType, 'mixtral');
    assert.deepEqual(spec.moe, { experts: 8, topK: 2, auxLossCoef: 0 });
    assert.equal(describeSpec(spec), 'mixtral 32L×4096 32H/8KV×128 mlp 14336 ×8 experts top 2 ctx 32768 vocab 32000');
    const trained = specFromHfConfig({ ...MIXTRAL, output_router_logits: true }) as LlamaSpec;
    assert.equal(trained.moe!.auxLossCoef, 0.02);
  });

  it('round-trips mixtral-tiny (router loss on) and writes what transformers\' MixtralConfig reads', () => {
    const spec = llamaSpec('mixtral-tiny', 40, 16);
    const config = hfConfigFromSpec(spec);
    assert.equal(config.model_type, 'mixtral');
    assert.deepEqual(config.architectures, ['MixtralForCausalLM']);
    assert.equal(config.num_local_experts, 8);
    assert.equal(config.num_experts_per_tok, 2);
    assert.equal(config.router_aux_loss_coef, 0.02);
    assert.equal(config.output_router_logits, true);
    assert.equal('router_jitter_noise' in config, false);
    assert.deepEqual(specFromHfConfig(config), spec);
  });

  it('refuses router noise, a sliding window and more experts per token than experts, naming the file and field', () => {
    assert.throws(() => specFromHfConfig({ ...MIXTRAL, router_jitter_noise: 0.01 }, 'm/config.json'), /m\/config\.json.*router_jitter_noise/s);
    assert.throws(() => specFromHfConfig({ ...MIXTRAL, sliding_window: 4096 }, 'm/config.json'), /sliding_window/);
    assert.throws(() => specFromHfConfig({ ...MIXTRAL, num_experts_per_tok: 9 }, 'm/config.json'), /num_experts_per_tok must be an integer in \[1, 8\]/);
  });
});
