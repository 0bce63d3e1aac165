/**
 * The documents of a corpus file, as pieces of text, one file at a time and never the whole corpus:
 *   - text (.txt, .md, any other name): the file is one document; where it holds the tokenizer's
 *     end-of-document text (gpt2: <|endoftext|>, as TinyStories' files do) it is several, split
 *     there (pieces of whitespace only between two markers are no document);
 *   - JSONL (.jsonl, .ndjson): each line is a JSON object, its `textField` (default `text`) one document;
 *   - Parquet (.parquet): each row's `textField` column is one document.
 * Input that is not what its name says is refused with the file and line (or row): gzip anywhere,
 * binary bytes or invalid UTF-8 in text, a line that is not JSON, a record without the field, a
 * .parquet that is not Parquet.
 *
 * A large text file is read in chunks of about 8 MB, cut only at a line end right after a letter or
 * digit, where no byte-level BPE pre-tokenizer (GPT-2's, Llama 3's, Qwen's) joins the two sides: the
 * pieces' tokens are the whole document's.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { CorpusFile } from './corpus_files.js';
import { DataError } from './errors.js';
import { ParquetReader } from './parquet_sync.js';

/** Text of one document, or a part of one; `end` marks its last piece. */
export interface DocumentPiece {
  text: string;
  end: boolean;
}

export interface DocumentOptions {
  /** JSONL and Parquet: the field holding the text (--text-field; default `text`). */
  textField: string;
  /** Text files are split into documents where this occurs (null: a file is one document). */
  eosText: string | null;
  /** Bytes read at a time (default 32 MiB; tests use small chunks). */
  chunkBytes?: number;
}

const CHUNK = 8 << 20;
const NL = 0x0a;

/** The documents of `file`, piece by piece. */
export function* documentPieces(file: CorpusFile, o: DocumentOptions): Generator<DocumentPiece> {
  if (file.format === 'parquet') yield* parquetDocuments(file.path, o.textField);
  else if (file.format === 'jsonl') yield* jsonlDocuments(file.path, o);
  else yield* textDocuments(file.path, o);
}

function* textDocuments(path: string, o: DocumentOptions): Generator<DocumentPiece> {
  let open = false;
  for (const chunk of checkedChunks(path, o.chunkBytes ?? CHUNK, cutAfterWord)) {
    const parts = o.eosText === null ? [chunk.text] : chunk.text.split(o.eosText);
    for (let i = 0; i < parts.length; i++) {
      const closes = i < parts.length - 1 || (chunk.last && i === parts.length - 1);
      // Whitespace between two markers (or before the first, after the last) is no document.
      if (!open && parts[i].trim() === '') continue;
      yield { text: parts[i], end: closes };
      open = !closes;
    }
  }
}

function* jsonlDocuments(path: string, o: DocumentOptions): Generator<DocumentPiece> {
  for (const chunk of checkedChunks(path, o.chunkBytes ?? CHUNK, cutAtLine)) {
    const lines = chunk.text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === '') continue;
      const line = chunk.firstLine + i;
      let record: unknown;
      try {
        record = JSON.parse(lines[i]);
      } catch (e) {
        throw new DataError(path, `line ${line} is not JSON (${(e as Error).message}); each line of a JSONL file is one JSON object (--data-file)`);
      }
      const text = typeof record === 'object' && record !== null && !Array.isArray(record) ? (record as Record<string, unknown>)[o.textField] : undefined;
      if (typeof text !== 'string') throw new DataError(path, `line ${line} has no "${o.textField}" text (${describeRecord(record)}); name the field with --text-field (--data-file)`);
      if (text !== '') yield { text, end: true };
    }
  }
}

function describeRecord(record: unknown): string {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return `it is ${Array.isArray(record) ? 'an array' : JSON.stringify(record)}`;
  const keys = Object.keys(record);
  return keys.length ? `its fields: ${keys.slice(0, 8).join(', ')}` : 'it is {}';
}

function* parquetDocuments(path: string, field: string): Generator<DocumentPiece> {
  const head = firstBytes(path, 4);
  refuseGzip(path, head);
  const reader = new ParquetReader();
  try {
    let layout;
    try {
      layout = reader.layout(path);
    } catch (e) {
      throw new DataError(path, `is not a Parquet file (${(e as Error).message}) (--data-file)`);
    }
    if (!layout.columns.includes(field)) throw new DataError(path, `has no column "${field}" (columns: ${layout.columns.join(', ')}); name it with --text-field (--data-file)`);
    for (const g of layout.groups) {
      const values = reader.rows(path, field, g.start, g.end);
      for (let i = 0; i < values.length; i++) {
        const text = values[i];
        if (typeof text !== 'string') throw new DataError(path, `row ${g.start + i} has no "${field}" text (${text === null || text === undefined ? 'null' : typeof text}) (--data-file)`);
        if (text !== '') yield { text, end: true };
      }
    }
  } finally {
    reader.close();
  }
}

interface Chunk {
  text: string;
  /** 1-based line number of the chunk's first line. */
  firstLine: number;
  last: boolean;
}

/** Where a chunk of `bytes[0, length)` may end (exclusive), or -1 for nowhere. */
type CutRule = (bytes: Uint8Array, length: number) => number;

const cutAtLine: CutRule = (bytes, length) => {
  const i = bytes.lastIndexOf(NL, length - 1);
  return i < 0 ? -1 : i + 1;
};

/** Before a line end that follows an ASCII letter or digit (the line end starts the next piece). */
const cutAfterWord: CutRule = (bytes, length) => {
  for (let i = bytes.lastIndexOf(NL, length - 1); i > 0; i = bytes.lastIndexOf(NL, i - 1)) {
    const c = bytes[i - 1];
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return i;
  }
  return -1;
};

/** A file's text in chunks, each valid UTF-8 with no NUL byte; anything else is refused with its line. */
function* checkedChunks(path: string, chunkBytes: number, cut: CutRule): Generator<Chunk> {
  const fd = openSync(path, 'r');
  try {
    let buf = new Uint8Array(chunkBytes);
    let held = 0;
    let line = 1;
    let atEnd = false;
    let first = true;
    while (!atEnd || held > 0) {
      if (!atEnd && held < buf.length) {
        const n = readSync(fd, buf, held, buf.length - held, null);
        if (n === 0) atEnd = true;
        held += n;
        if (first) refuseGzip(path, buf.subarray(0, held));
        first = false;
        if (!atEnd && held < buf.length) continue;
      }
      if (held === 0) break;
      const end = atEnd ? held : cut(buf, held);
      if (end <= 0) {
        // No place to cut: read on in a larger buffer.
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf.subarray(0, held));
        buf = bigger;
        continue;
      }
      const bytes = buf.subarray(0, end);
      const text = decodeChecked(path, bytes, line);
      const lines = countLines(bytes);
      yield { text, firstLine: line, last: atEnd && end === held };
      line += lines;
      buf.copyWithin(0, end, held);
      held -= end;
    }
  } finally {
    closeSync(fd);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeChecked(path: string, bytes: Uint8Array, firstLine: number): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new DataError(path, `line ${firstLine + countLines(bytes.subarray(0, nul))} holds a NUL byte: binary data, not text (--data-file reads .txt, .md and .jsonl files as UTF-8 text)`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new DataError(path, `line ${firstLine + firstBadLine(bytes)} is not UTF-8 text (binary data?) (--data-file reads .txt, .md and .jsonl files as UTF-8 text)`);
  }
}

/** The 0-based line (within `bytes`) of the first invalid UTF-8: decoding line by line finds it. */
function firstBadLine(bytes: Uint8Array): number {
  let start = 0;
  for (let line = 0; ; line++) {
    const nl = bytes.indexOf(NL, start);
    const end = nl < 0 ? bytes.length : nl;
    try {
      utf8.decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    if (nl < 0) return line;
    start = nl + 1;
  }
}

function countLines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(NL); i >= 0; i = bytes.indexOf(NL, i + 1)) n++;
  return n;
}

function refuseGzip(path: string, head: Uint8Array): void {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    throw new DataError(path, 'is gzip-compressed data, whatever its name says: decompress it first (gunzip) (--data-file takes text, JSONL or Parquet)');
  }
}

function firstBytes(path: string, n: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}
