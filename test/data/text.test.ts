import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IGNORE_INDEX, type StreamedTokenDataset } from '../../src/data/dataset.js';
import { DataError } from '../../src/data/errors.js';
import { type TextOptions, loadText as loadTextIn } from '../../src/data/text.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('text');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const PROSE = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. ';

/** loadText with the token files kept in the test's folder. */
const loadText = (o: TextOptions) => loadTextIn({ cacheDir: join(dir, 'cache'), ...o });

/** Every window of a streamed dataset, read into arrays. */
function materialise(d: StreamedTokenDataset): { inputs: Int32Array; labels: Int32Array } {
  const T = d.inputShape[0];
  const inputs = new Int32Array(d.size * T);
  const labels = new Int32Array(d.size * T);
  for (let i = 0; i < d.size; i++) d.windows.read(i, inputs.subarray(i * T, (i + 1) * T), labels.subarray(i * T, (i + 1) * T));
  return { inputs, labels };
}

function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('text files', () => {
  it('gpt2 is GPT-2\'s byte-pair encoding (published ids), decoding round-trips; bytes are UTF-8', () => {
    const gpt2 = makeTokenizer('gpt2');
    assert.equal(gpt2.vocabSize, 50257);
    assert.deepEqual([...gpt2.encode('Hello world')], [15496, 995]);
    assert.deepEqual([...gpt2.encode('<|endoftext|>')].length > 1, true, 'the special token\'s text is plain text in a file');
    assert.equal(gpt2.decode(gpt2.encode(PROSE)), PROSE);
    const bytes = makeTokenizer('bytes');
    assert.deepEqual([...bytes.encode('hé')], [104, 195, 169]);
    assert.equal(bytes.decode(bytes.encode('naïve ✓')), 'naïve ✓');
  });

  it('language-model windows: labels are the next tokens; the last 10 % of tokens are the validation split', () => {
    const text = PROSE.repeat(20);
    const ids = makeTokenizer('bytes').encode(text);
    const d = loadText({ file: file('a.txt', text), tokenizer: 'bytes', task: 'language-model', seed: 0, contextLength: 16 });
    assert.equal(d.tokens, ids.length);
    const val = Math.round(ids.length * 0.1);
    assert.equal(d.train.size, Math.floor((ids.length - val - 1) / 16));
    assert.equal(d.test.size, Math.floor((val - 1) / 16));
    assert.equal(d.train.vocabSize, 256);
    const train = materialise(d.train);
    for (let i = 0; i < d.train.size * 16; i++) {
      assert.equal(train.inputs[i], ids[i]);
      assert.equal(train.labels[i], ids[i + 1]);
    }
    const test = materialise(d.test);
    assert.equal(test.inputs[0], ids[ids.length - val]);
    assert.equal(test.labels[0], ids[ids.length - val + 1]);
  });

  it('masked-lm windows with gpt2 tokens: an extra mask id, ~15 % scored, deterministic from the seed', () => {
    const text = PROSE.repeat(60);
    const a = loadText({ file: file('b.txt', text), tokenizer: 'gpt2', task: 'masked-lm', seed: 3, contextLength: 32 });
    const b = loadText({ file: file('b.txt', text), tokenizer: 'gpt2', task: 'masked-lm', seed: 3, contextLength: 32 });
    assert.equal(a.train.vocabSize, 50258);
    assert.equal(a.train.maskToken, 50257);
    const [ma, mb] = [materialise(a.train), materialise(b.train)];
    assert.deepEqual(ma.inputs, mb.inputs);
    const scored = ma.labels.filter((l) => l !== IGNORE_INDEX).length / ma.labels.length;
    assert.ok(scored > 0.08 && scored < 0.22, `scored ${scored}`);
  });

  it('a missing, empty or too short file, or a folder with no data file, is a DataError naming it and what is needed', () => {
    const missing = join(dir, 'none.txt');
    assert.throws(() => loadText({ file: missing, tokenizer: 'bytes', task: 'language-model', seed: 0 }), (e: unknown) => e instanceof DataError && e.file === missing && /not found/.test(e.message));
    const short = file('short.txt', 'tiny');
    assert.throws(() => loadText({ file: short, tokenizer: 'bytes', task: 'language-model', seed: 0, contextLength: 8 }),
      (e: unknown) => e instanceof DataError && e.file === short && /has 4 bytes tokens; at context 8 it needs at least 18/.test(e.message));
    // A folder is a corpus now (its text, JSONL and Parquet files); one with none of them is refused.
    const empty = join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    file('empty/notes.bin', 'x');
    assert.throws(() => loadText({ file: empty, tokenizer: 'bytes', task: 'language-model', seed: 0 }), (e: unknown) => e instanceof DataError && e.file === empty && /a folder with no \.txt/.test(e.message));
  });
});
