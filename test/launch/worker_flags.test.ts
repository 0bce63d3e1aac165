/**
 * The training config the flags describe (launch/worker_flags.ts): a run that names a --data-file
 * for a model that takes tokens (an --init folder, a transformer preset) trains on the text dataset
 * without --dataset, and says so once; --dataset, or a model of images, keeps its own. --init brings
 * its tokenizer (and chat template) unless --tokenizer names another.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import { type TrainFlags, configFrom, datasetFromData } from '../../src/launch/worker_flags.js';
import { runCli } from '../helpers/cli.js';
import { SMOLLM2_TEMPLATE, writeTokenizerFolder } from '../generate/chat_template_fixtures.js';
import { tempDir } from '../helpers/cluster.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 32, layers: 1, width: 32, intermediate: 64, heads: 2, kvHeads: 1, headDim: 16,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('worker-flags');
const folder = join(dir, 'llama');
saveFolder(folder, createModel(SPEC, 1), SPEC);
const text = join(dir, 'notes.txt');
writeFileSync(text, Array.from({ length: 40 }, (_, i) => `line ${i}: the quick brown fox.`).join('\n'));
const flags = (f: Partial<TrainFlags>): TrainFlags => ({ model: 'mlp', ...f }) as TrainFlags;

// The same model with a tokenizer.json and a chat template beside it, as a Hugging Face folder has them.
const tokenized = join(dir, 'llama-chat');
saveFolder(tokenized, createModel(SPEC, 1), SPEC);
writeTokenizerFolder(tokenized, { chat_template: SMOLLM2_TEMPLATE, eos_token: '<|im_end|>', bos_token: null });
const chat = join(dir, 'chat.jsonl');
writeFileSync(chat, Array.from({ length: 12 }, () => JSON.stringify({ messages: [{ role: 'user', content: 'hello world' }, { role: 'assistant', content: 'world hello world' }] })).join('\n'));

describe('the dataset a run means', () => {
  it('a --data-file for a model that takes tokens is the text dataset; --dataset, or a model of images, keeps its own', () => {
    assert.equal(datasetFromData(flags({ init: folder, dataFile: text })), 'text');
    assert.equal(configFrom(flags({ init: folder, dataFile: text }), 1).dataset, 'text');
    assert.equal(configFrom(flags({ model: 'gpt2-tiny', dataFile: text }), 1).dataset, 'text');
    assert.equal(configFrom(flags({ init: folder, dataFile: text, dataset: 'synthetic_text' }), 1).dataset, 'synthetic_text');
    assert.equal(datasetFromData(flags({ dataFile: text })), undefined, 'the mlp takes images: mnist stays the default');
    assert.equal(configFrom(flags({ init: folder }), 1).dataset, 'mnist', 'no --data-file: nothing to infer from');
  });

  it('--init brings its tokenizer (a folder\'s tokenizer.json, a GGUF file\'s) unless --tokenizer says otherwise', () => {
    assert.equal(configFrom(flags({ init: tokenized, dataFile: text }), 1).tokenizer, tokenized);
    assert.equal(configFrom(flags({ init: tokenized, dataFile: text, tokenizer: 'bytes' }), 1).tokenizer, 'bytes');
    assert.equal(configFrom(flags({ init: folder, dataFile: text }), 1).tokenizer, undefined, 'a folder without tokenizer.json brings none');
  });

  it('train --init FOLDER --data-file chat.jsonl, nothing else: the text dataset, the folder\'s tokenizer and chat template; it says so', async () => {
    const r = await runCli(['train', '--init', tokenized, '--data-file', chat, '--context', '32', '--batch-size', '2', '--max-steps', '1',
      '--eval-every', '0', '--threads', '1', '--experiments-dir', dir, '--name', 'inferred'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /--dataset text \(from --data-file and the model, which takes tokens\)/);
    const config = JSON.parse(readFileSync(join(dir, 'inferred', 'config.json'), 'utf8')) as { dataset: string; tokenizer: string };
    assert.deepEqual([config.dataset, config.tokenizer], ['text', tokenized]);
  });
});
