/**
 * loadGenerator on each source --model takes: a Hugging Face folder (its tokenizer, eos ids and chat
 * template), smolcluster's model file and safetensors, a run's folder (the saved model or the newest
 * checkpoint, whichever has more steps, and the run's tokenizer), and the refusals.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generate } from '../../src/generate/generate.js';
import { InsufficientMemoryError } from '../../src/generate/inference_memory.js';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { heldBf16Casts } from '../../src/generate/model_casts.js';
import { readTrainingState, saveCheckpoint, saveModel } from '../../src/nn/checkpoint.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { saveSafetensors } from '../../src/nn/interchange/model_io.js';
import { type ModelSpec, createModel } from '../../src/nn/models/index.js';
import { SGD } from '../../src/nn/optim/sgd.js';
import { SMOLLM2_TEMPLATE, writeTokenizerFolder } from './chat_template_fixtures.js';
import { randomModel } from './families.js';

const root = mkdtempSync(join(tmpdir(), 'smol-load-generator-'));
after(() => rmSync(root, { recursive: true, force: true }));

const BYTES_GPT2: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 32, layers: 1, width: 16, heads: 2, dropout: 0 };
const LLAMA: ModelSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 16, context: 32, layers: 1, width: 16, intermediate: 24, heads: 2, kvHeads: 1, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
};

const params = (m: { parameters(): { values(): ArrayLike<number> }[] }): number[] => Array.from(m.parameters()[0].values());

describe('loadGenerator', () => {
  it('a Hugging Face folder: its tokenizer.json, its eos ids (config and generation_config) and its chat template', async () => {
    const dir = writeTokenizerFolder(join(root, 'hf'), { bos_token: '<|im_start|>', eos_token: '<|im_end|>', chat_template: SMOLLM2_TEMPLATE });
    const model = randomModel(LLAMA, 3);
    saveFolder(dir, model, LLAMA, { tokens: { eos: 0 } });
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, 4] }));
    const g = await loadGenerator(dir);
    assert.equal(g.tokenizer.name, join(dir, 'tokenizer.json'));
    assert.deepEqual([...g.eosIds].sort(), [0, 2, 4]);
    assert.equal(g.chatTemplate!.eosToken, '<|im_end|>');
    assert.deepEqual(params(g.model), params(model));
    assert.deepEqual((await generate(g.model, [3, 5], { maxNewTokens: 4 })).ids, (await generate(model, [3, 5], { maxNewTokens: 4 })).ids);
  });

  it('a folder named like a built-in tokenizer (gpt2, bytes) brings its own tokenizer.json, not the built-in one', async () => {
    const cwd = process.cwd();
    for (const name of ['gpt2', 'bytes']) {
      const dir = writeTokenizerFolder(join(root, name), { eos_token: '<|im_end|>' });
      saveFolder(dir, randomModel(LLAMA, 3), LLAMA, { tokens: { eos: 0 } });
      process.chdir(root);
      try {
        const g = await loadGenerator(name);
        assert.equal(g.tokenizer.name, join(root, name, 'tokenizer.json'));
        assert.ok(g.tokenizer.vocabSize < 16, `the folder's small vocabulary, not ${g.tokenizer.vocabSize}`);
      } finally {
        process.chdir(cwd);
      }
    }
  });

  it('smolcluster\'s model file and a safetensors file: the spec from the file, the tokenizer from the vocabulary (256: bytes)', async () => {
    const model = randomModel(BYTES_GPT2, 4);
    const smol = join(root, 'm.smol');
    const safe = join(root, 'm.safetensors');
    await saveModel(smol, model, BYTES_GPT2);
    saveSafetensors(safe, model, BYTES_GPT2);
    for (const file of [smol, safe]) {
      const g = await loadGenerator(file);
      assert.equal(g.tokenizer.name, 'bytes');
      assert.deepEqual(g.eosIds, []);
      assert.equal(g.chatTemplate, null);
      assert.deepEqual(params(g.model), params(model));
    }
    const bf16 = await loadGenerator(smol, { tokenizer: 'bytes', precision: 'bf16' });
    assert.equal(bf16.precision, 'bf16');
    assert.ok(heldBf16Casts(bf16.model), 'a model loaded for bf16 holds its weight casts for its life');
    assert.equal(heldBf16Casts((await loadGenerator(smol)).model), undefined, 'an fp32 load holds none');
  });

  it('a run\'s folder: the saved model when it has the most steps, else the newest checkpoint; the run\'s tokenizer', async () => {
    const run = join(root, 'experiments', 'r1');
    mkdirSync(join(run, 'checkpoints'), { recursive: true });
    writeFileSync(join(run, 'config.json'), JSON.stringify({ schema: 'smolcluster-config', schema_version: 1, model: 'gpt2-tiny', dataset: 'text', tokenizer: 'bytes' }));
    const [early, late, saved] = [5, 6, 7].map((s) => randomModel(BYTES_GPT2, s));
    for (const [step, m] of [[10, early], [20, late]] as const) {
      const opt = new SGD(m.arena(), { lr: 0.1 });
      saveCheckpoint(join(run, 'checkpoints', `ckpt-${String(step).padStart(8, '0')}.smolckpt`), m, BYTES_GPT2, opt, {}, [], await readTrainingState(m, opt));
    }
    // No events: the newest checkpoint.
    assert.deepEqual(params((await loadGenerator(run)).model), params(late));
    // The saved model, recorded relative to where the run ran (the experiments folder's parent), at step 20 too.
    await saveModel(join(root, 'final.smol'), saved, BYTES_GPT2);
    writeFileSync(join(run, 'events.jsonl'), `${JSON.stringify({ kind: 'checkpoint', file: 'experiments/r1/checkpoints/ckpt-00000020.smolckpt', step: 20 })}\n${JSON.stringify({ kind: 'model_saved', file: 'final.smol', step: 20 })}\n{"kind": "cut sh`);
    const g = await loadGenerator(run);
    assert.equal(g.weights, join(root, 'final.smol'));
    assert.equal(g.tokenizer.name, 'bytes');
    assert.deepEqual(params(g.model), params(saved));
  });

  it('refuses what it cannot generate with, naming the source', async () => {
    await assert.rejects(loadGenerator(join(root, 'nowhere')), /nowhere: not found/);
    const empty = join(root, 'empty-run');
    mkdirSync(empty);
    writeFileSync(join(empty, 'config.json'), JSON.stringify({ schema: 'smolcluster-config', dataset: 'text' }));
    await assert.rejects(loadGenerator(empty), /without a checkpoint or a saved model yet/);
    const bert = join(root, 'bert.smol');
    const bertSpec: ModelSpec = { type: 'bert', vocabSize: 40, context: 16, layers: 1, width: 16, heads: 2, intermediate: 32, dropout: 0 };
    await saveModel(bert, createModel(bertSpec, 0), bertSpec);
    await assert.rejects(loadGenerator(bert), /holds a bert model; generation needs a causal language model/);
    const odd = join(root, 'odd.smol');
    await saveModel(odd, createModel(LLAMA, 0), LLAMA);
    await assert.rejects(loadGenerator(odd), /vocabulary \(16\) is not one of a named tokenizer.*pass --tokenizer/);
    await assert.rejects(loadGenerator(odd, { tokenizer: 'bytes' }), /256 token ids, more than the model's 16/);
    await assert.rejects(loadGenerator(join(root, 'm.smol'), { device: 'tpu' }), /"tpu" is not a device/);
  });

  it('fitRows: rows a ceiling — the most that fit the memory available, refused when one does not; without it, refused', async () => {
    const dir = writeTokenizerFolder(join(root, 'fit'), { eos_token: '<|im_end|>' });
    // Long sequences (the estimate counts each row's KV cache at its positions), so rows outweigh loading.
    const long = { ...LLAMA, context: 4096 } as ModelSpec;
    saveFolder(dir, randomModel(long, 3), long, { tokens: { eos: 0 } });
    const need = async (rows: number): Promise<number> => (await loadGenerator(dir, { rows, availableBytes: 1e15 })).memory!.need.total;
    const [one, two] = [await need(1), await need(2)];
    assert.ok(two > one, 'each row adds its KV cache to the estimate');
    // Room for 4 rows and half of a fifth.
    const available = one + 3.5 * (two - one);
    const fitted = await loadGenerator(dir, { rows: 8, fitRows: true, availableBytes: available });
    assert.equal(fitted.memory!.need.rows, 4);
    assert.ok(fitted.memory!.need.total <= available);
    await assert.rejects(loadGenerator(dir, { rows: 8, availableBytes: available }), (e: unknown) => e instanceof InsufficientMemoryError && e.need.rows === 8);
    await assert.rejects(loadGenerator(dir, { rows: 8, fitRows: true, availableBytes: one - 1 }), (e: unknown) => e instanceof InsufficientMemoryError && e.need.rows === 1);
  });
});

