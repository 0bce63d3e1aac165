import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IGNORE_INDEX, type StreamedTokenDataset } from '../../src/data/dataset.js';
import { DataError } from '../../src/data/errors.js';
import { BatchLoader } from '../../src/data/loader.js';
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

  it('gpt2 separates documents with its <|endoftext|> (50256); the text <|endoftext|> in a file splits it there', () => {
    const gpt2 = makeTokenizer('gpt2');
    assert.equal(gpt2.eos, 50256);
    assert.deepEqual([...gpt2.encodeDocument('Hello world')], [15496, 995, 50256]);
    const path = file('tiny-stories.txt', `${PROSE}<|endoftext|>\n${PROSE}`);
    const d = loadText({ file: path, tokenizer: 'gpt2', task: 'language-model', seed: 0, contextLength: 8, validationFraction: 0.5 });
    assert.deepEqual(d.documents, { train: 1, test: 1 });
    const one = [...gpt2.encode(PROSE), 50256];
    const two = [...gpt2.encode(`\n${PROSE}`), 50256];
    assert.equal(d.tokens, one.length + two.length);
    const train = materialise(d.train);
    assert.deepEqual([...train.inputs], one.slice(0, d.train.size * 8));
  });
});

describe('text corpora: validation by documents, the token file reused, windows read by range', () => {
  /** A folder of `n` documents of distinct lengths. */
  function corpus(name: string, n: number): string {
    const folder = join(dir, name);
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < n; i++) writeFileSync(join(folder, `doc_${i}.txt`), `Document ${i}. ${PROSE.repeat(1 + (i % 3))}`);
    return folder;
  }

  it('--val-fraction holds out the last documents whole; windows pack across documents with the separator', () => {
    const folder = corpus('ten', 10);
    const gpt2 = makeTokenizer('gpt2');
    const docs = Array.from({ length: 10 }, (_, i) => [...gpt2.encode(`Document ${i}. ${PROSE.repeat(1 + (i % 3))}`), 50256]);
    const all = docs.flat();
    const d = loadText({ file: folder, tokenizer: 'gpt2', task: 'language-model', seed: 0, contextLength: 16, validationFraction: 0.2 });
    assert.deepEqual(d.documents, { train: 8, test: 2 });
    const boundary = docs.slice(0, 8).flat().length;
    assert.equal(d.train.size, Math.floor((boundary - 1) / 16));
    assert.equal(d.test.size, Math.floor((all.length - boundary - 1) / 16));
    const train = materialise(d.train);
    assert.deepEqual([...train.inputs], all.slice(0, d.train.size * 16));
    assert.deepEqual([...train.labels], all.slice(1, d.train.size * 16 + 1));
    assert.ok(train.inputs.includes(50256), 'windows hold the documents\' separators');
    const test = materialise(d.test);
    assert.deepEqual([...test.inputs.subarray(0, 16)], all.slice(boundary, boundary + 16), 'validation starts at the first held-out document');
    // The default is 10 %: one of ten documents.
    assert.deepEqual(loadText({ file: folder, tokenizer: 'gpt2', task: 'language-model', seed: 0, contextLength: 16 }).documents, { train: 9, test: 1 });
  });

  it('--val-file: the whole --data-file trains and the other corpus validates; giving both choices is refused', () => {
    const train = corpus('train-part', 4);
    const val = file('val.jsonl', `${JSON.stringify({ text: PROSE.repeat(3) })}\n${JSON.stringify({ text: PROSE })}\n`);
    const d = loadText({ file: train, tokenizer: 'bytes', task: 'language-model', seed: 0, contextLength: 32, validationFile: val });
    assert.deepEqual(d.documents, { train: 4, test: 2 });
    assert.equal(d.cache.length, 2);
    assert.equal(d.test.size, Math.floor((PROSE.length * 4 - 1) / 32));
    assert.throws(() => loadText({ file: train, tokenizer: 'bytes', task: 'language-model', seed: 0, validationFile: val, validationFraction: 0.1 }),
      (e: unknown) => e instanceof DataError && e.file === '--val-file' && /give one/.test(e.message));
    assert.throws(() => loadText({ file: train, tokenizer: 'bytes', task: 'language-model', seed: 0, validationFraction: 1 }), /--val-fraction: must be between 0 and 1/);
  });

  it('a second load reuses the token file (not rebuilt); a changed file builds a new one', () => {
    const folder = corpus('reuse', 5);
    const o = { file: folder, tokenizer: 'gpt2', task: 'language-model' as const, seed: 0, contextLength: 16 };
    const first = loadText(o);
    const before = statSync(first.cache[0]);
    const second = loadText(o);
    assert.deepEqual(second.cache, first.cache);
    const after = statSync(second.cache[0]);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtimeMs, before.mtimeMs);
    writeFileSync(join(folder, 'doc_0.txt'), 'Rewritten. ' + PROSE);
    assert.notDeepEqual(loadText(o).cache, first.cache);
  });

  it('a corpus many windows long is read window by window through the loader (no token array in memory)', () => {
    const text = PROSE.repeat(400); // ≈ 44k bytes tokens: thousands of windows
    const path = file('long.txt', text);
    const d = loadText({ file: path, tokenizer: 'bytes', task: 'language-model', seed: 0, contextLength: 16 });
    assert.ok(!('inputs' in d.train), 'the dataset holds no token array');
    const ids = new TextEncoder().encode(text);
    const picked = Int32Array.from([d.train.size - 1, 0, 1234]);
    const loader = new BatchLoader(d.train, picked, 3);
    const [batch] = [...loader];
    assert.equal(batch.size, 3);
    picked.forEach((w, j) => {
      assert.deepEqual([...batch.inputs.subarray(j * 16, j * 16 + 16)], [...ids.subarray(w * 16, w * 16 + 16)]);
      assert.deepEqual([...batch.labels.subarray(j * 16, j * 16 + 16)], [...ids.subarray(w * 16 + 1, w * 16 + 17)]);
    });
    assert.throws(() => d.train.windows.read(d.train.size, new Int32Array(16), new Int32Array(16)), /outside its/);
  });

  it('a validation split too short for one window is refused, naming the split', () => {
    const folder = join(dir, 'short-val');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'a.txt'), PROSE.repeat(10));
    writeFileSync(join(folder, 'b.txt'), 'tiny');
    assert.throws(() => loadText({ file: folder, tokenizer: 'bytes', task: 'language-model', seed: 0, contextLength: 16 }),
      (e: unknown) => e instanceof DataError && e.file === folder && /the validation split \(the last 1 of 2 documents; --val-fraction 0\.1\) has 4 bytes tokens; at context 16 it needs at least 17/.test(e.message));
  });
});

