/**
 * `train --init DIR` and `--save DIR` through the CLI (train/run/init_source.ts, run.ts): the model
 * comes from the folder's config.json (no --model or size flags), flags that contradict it are
 * refused by name, the trained model is saved as a folder with the --init folder's tokenizer files,
 * and a run that failed on its --init does not block rerunning the same --name.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPretrained, saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import { checkInitExists, folderSpec, modelForInit } from '../../../src/train/run/init_source.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { runCli } from '../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-init-folder-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny Qwen3 (q/k norms) whose vocabulary is larger than synthetic_text's 64 ids. */
const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'qwen3', vocabSize: 80, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: true, dropout: 0,
};
const init = join(dir, 'init');
saveFolder(init, createModel(SPEC, 1), SPEC, { tokens: { bos: 1, eos: 2 } });
writeFileSync(join(init, 'tokenizer_config.json'), '{"model_max_length": 32}');
writeFileSync(join(init, 'generation_config.json'), '{"eos_token_id": 2}');

const common = ['--dataset', 'synthetic_text', '--context', '16', '--max-steps', '2', '--eval-every', '0', '--threads', '1', '--experiments-dir', dir];

describe('--init DIR: the model from config.json', () => {
  it('modelForInit and folderSpec: the family\'s name, the folder\'s spec, flags checked', () => {
    assert.equal(modelForInit(init, 'mlp'), 'qwen3-0.6b');
    assert.equal(modelForInit(undefined, 'mlp'), 'mlp');
    assert.equal(modelForInit(init, 'llama-tiny'), 'llama-tiny', 'a preset of the folder\'s family stays');
    assert.throws(() => modelForInit(init, 'gpt2-tiny'), /--model\): gpt2-tiny is not the family of --init .*, whose config\.json holds a qwen3/);
    // A typo or a hub id is refused as --init's (train asks first, before --model, mlp by default, or the dataset would be blamed).
    assert.throws(() => checkInitExists('Qwen/Qwen2.5-0.5B'), /--init\): "Qwen\/Qwen2\.5-0\.5B" does not exist; a Hugging Face hub id is not downloaded: fetch the folder first \(huggingface-cli download Qwen\/Qwen2\.5-0\.5B --local-dir Qwen2\.5-0\.5B\)/);
    assert.throws(() => checkInitExists(`${init}-typo`), /--init\): ".*-typo" does not exist$/);
    assert.doesNotThrow(() => checkInitExists(init));
    const text = (contextLength: number): ReturnType<typeof syntheticText> => syntheticText({ seed: 0, samples: 4, split: 'train', task: 'language-model', contextLength });
    const data = text(16);
    assert.deepEqual(folderSpec({ init }, data), SPEC);
    assert.deepEqual(folderSpec({ init, layers: 2, heads: 4, context: 16 }, data), SPEC);
    assert.deepEqual(folderSpec({ init, dropout: 0.2 }, data), { ...SPEC, dropout: 0.2 }, '--dropout is how the run trains: it overrides config.json\'s');
    assert.throws(() => folderSpec({ init, layers: 3 }, data), /--layers\): 3 disagrees with --init's config\.json, which has 2/);
    assert.throws(() => folderSpec({ init, width: 32 }, data), /--width\): 32 disagrees/);
    assert.throws(() => folderSpec({ init, context: 64 }, data), /--context\): 64 exceeds the 32 positions/);
    assert.throws(() => folderSpec({ init }, text(48)), /48-token windows exceed the 32 positions/);
    assert.throws(() => folderSpec({ init }, syntheticText({ seed: 0, samples: 4, split: 'train', task: 'language-model', contextLength: 16, vocab: 90 })), /90 token ids, more than the 80/);
  });

  it('trains from the folder and saves a sharded folder with its tokenizer files; transformers-style config back', { timeout: 120_000 }, async () => {
    const out = join(dir, 'out');
    const r = await runCli(['train', '--init', init, '--name', 'ft', '--save', out, '--save-shard-size', '4KB', ...common], { timeoutMs: 110_000 });
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(readFileSync(join(dir, 'ft', 'result.json'), 'utf8'));
    assert.equal(result.model, 'qwen3 2L×16 4H/2KV×8 mlp 24 ctx 32 vocab 80', 'the shape trained is the folder\'s');
    assert.ok(existsSync(join(out, 'model.safetensors.index.json')), readdirSync(out).join(', '));
    assert.equal(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'), '{"model_max_length": 32}');
    assert.ok(existsSync(join(out, 'generation_config.json')));
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual([config.model_type, config.bos_token_id, config.eos_token_id], ['qwen3', 1, 2]);
    const saved = await loadPretrained(out);
    assert.deepEqual(saved.spec, SPEC);
    const start = new Map((await loadPretrained(init)).model.namedParameters().map(([n, p]) => [n, Array.from(p.values())]));
    assert.ok(saved.model.namedParameters().some(([n, p]) => JSON.stringify(Array.from(p.values())) !== JSON.stringify(start.get(n))), 'the weights trained');
  });

  it('refuses a size flag that contradicts config.json by name, before the run\'s folder exists', async () => {
    const r = await runCli(['train', '--init', init, '--heads', '2', '--name', 'wrong-heads', ...common]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--heads\): 2 disagrees with --init's config\.json, which has 4/);
    assert.equal(existsSync(join(dir, 'wrong-heads')), false);
  });
});

describe('a run that fails on its --init', () => {
  it('a folder without config.json: a clear error, and the same --name runs once the folder is fixed', { timeout: 120_000 }, async () => {
    const broken = join(dir, 'broken');
    mkdirSync(broken);
    const run = (): ReturnType<typeof runCli> => runCli(['train', '--init', broken, '--name', 'retry', ...common], { timeoutMs: 110_000 });
    const first = await run();
    assert.notEqual(first.code, 0);
    assert.match(first.stderr, /broken\/config\.json: is missing/);
    assert.equal(existsSync(join(dir, 'retry')), false, 'refused before the run\'s folder exists');
    assert.doesNotMatch(first.stderr, /EISDIR/);
    // Fixed: the same --name is not blocked by the failed attempt.
    saveFolder(broken, createModel(SPEC, 2), SPEC);
    const second = await run();
    assert.equal(second.code, 0, second.stderr);
  });

  it('a run whose weights do not fit fails after creating its folder, and still does not block its --name', { timeout: 120_000 }, async () => {
    const misfit = join(dir, 'misfit');
    saveFolder(misfit, createModel(SPEC, 3), SPEC);
    const config = JSON.parse(readFileSync(join(misfit, 'config.json'), 'utf8'));
    writeFileSync(join(misfit, 'config.json'), JSON.stringify({ ...config, intermediate_size: 20 }));
    const run = (): ReturnType<typeof runCli> => runCli(['train', '--init', misfit, '--name', 'misfit-run', ...common], { timeoutMs: 110_000 });
    const first = await run();
    assert.notEqual(first.code, 0);
    assert.match(first.stderr, /mlp\.gate_proj\.weight" has shape \[24, 16\], the model needs \[20, 16\]/);
    writeFileSync(join(misfit, 'config.json'), JSON.stringify(config));
    const second = await run();
    assert.equal(second.code, 0, second.stderr);
  });
});
