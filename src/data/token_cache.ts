/**
 * A tokenised corpus on disk (nanoGPT's train.bin, with a header): built once by streaming the
 * documents through the tokenizer, then read by range, so a corpus larger than memory trains and a
 * second run skips the tokenising. The name is a hash of the files (paths, sizes, modification
 * times), the tokenizer (its file, its BOS and EOS) and the text field, so a changed input builds a
 * new file.
 *
 * Layout (little-endian):
 *   0  'SCTOKENS' magic (8 bytes)      8  u32 format version (1)     12 u32 bytes per token (2 or 4)
 *   16 u32 vocabulary size             20 u32 reserved               24 f64 token count
 *   32 f64 document count              40..64 reserved
 *   64 the tokens (uint16 when the vocabulary fits, else uint32), documents one after another
 *   then one f64 per document: the index of its first token.
 * Where documents end is kept so validation can take whole documents.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CorpusFile } from './corpus_files.js';
import { type DocumentOptions, documentPieces } from './documents.js';
import { DataError } from './errors.js';
import { type Tokenizer, isNamedTokenizer } from './tokenizer.js';

const MAGIC = 'SCTOKENS';
const VERSION = 1;
const HEADER = 64;
/** Tokens buffered before each write while building. */
const WRITE_TOKENS = 1 << 20;

/** Where token files live: $SMOLCLUSTER_TOKEN_CACHE, else ~/.cache/smolcluster/tokens (XDG_CACHE_HOME honoured). */
export function defaultTokenCacheDir(): string {
  if (process.env.SMOLCLUSTER_TOKEN_CACHE) return process.env.SMOLCLUSTER_TOKEN_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'smolcluster', 'tokens');
}

/** The token file of these files under this tokenizer and field, in `dir`. */
export function tokenCachePath(dir: string, files: readonly CorpusFile[], tokenizer: Tokenizer, o: Pick<DocumentOptions, 'textField'>): string {
  const hash = createHash('sha256');
  // The document ends too: they come from tokenizer_config.json / config.json, beside the tokenizer's file.
  hash.update(JSON.stringify({ version: VERSION, textField: o.textField, tokenizer: tokenizerIdentity(tokenizer), bos: tokenizer.bos, eos: tokenizer.eos }));
  for (const f of files) {
    const s = statSync(f.path);
    hash.update(`\n${f.path}\0${s.size}\0${s.mtimeMs}`);
  }
  return join(dir, `${hash.digest('hex').slice(0, 32)}.bin`);
}

function tokenizerIdentity(t: Tokenizer): string {
  if (isNamedTokenizer(t.name)) return t.name;
  const s = statSync(t.name);
  return `${t.name}\0${s.size}\0${s.mtimeMs}`;
}

/** Opens the token file at `path`, building it first when it is not there. */
export function cachedTokens(path: string, files: readonly CorpusFile[], tokenizer: Tokenizer, o: DocumentOptions): TokenFile {
  if (!existsSync(path)) buildTokenFile(path, files, tokenizer, o);
  return TokenFile.open(path);
}

/**
 * Tokenises the documents of `files` into a token file at `path`: written beside it under a
 * temporary name and renamed at the end, so a reader never sees half a file (ranks of one host
 * building the same file at once each rename a complete, identical one).
 */
export function buildTokenFile(path: string, files: readonly CorpusFile[], tokenizer: Tokenizer, o: DocumentOptions): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  const width = tokenizer.vocabSize <= 65536 ? 2 : 4;
  const fd = openSync(temporary, 'w');
  try {
    const out = new TokenWriter(fd, width);
    const starts: number[] = [];
    let open = false;
    for (const file of files) {
      for (const piece of documentPieces(file, o)) {
        if (!open) {
          starts.push(out.total);
          if (tokenizer.bos !== null) out.push(Int32Array.of(tokenizer.bos));
          open = true;
        }
        if (piece.text) out.push(tokenizer.encode(piece.text));
        if (piece.end) {
          if (tokenizer.eos !== null) out.push(Int32Array.of(tokenizer.eos));
          open = false;
        }
      }
    }
    out.flush();
    writeSync(fd, new Uint8Array(Float64Array.from(starts).buffer), 0, starts.length * 8, HEADER + out.count * width);
    writeSync(fd, header(width, tokenizer.vocabSize, out.count, starts.length), 0, HEADER, 0);
    closeSync(fd);
    renameSync(temporary, path);
  } catch (e) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw e;
  }
}

function header(width: number, vocabSize: number, tokens: number, docs: number): Uint8Array {
  const h = new Uint8Array(HEADER);
  h.set(new TextEncoder().encode(MAGIC), 0);
  const v = new DataView(h.buffer);
  v.setUint32(8, VERSION, true);
  v.setUint32(12, width, true);
  v.setUint32(16, vocabSize, true);
  v.setFloat64(24, tokens, true);
  v.setFloat64(32, docs, true);
  return h;
}

/** Buffers tokens and writes them out in large blocks after the header. */
class TokenWriter {
  /** Tokens written out so far (pushed ones still held are not counted: see `total`). */
  count = 0;
  private readonly buf: Uint16Array | Uint32Array;
  private held = 0;

  constructor(private readonly fd: number, private readonly width: number) {
    this.buf = width === 2 ? new Uint16Array(WRITE_TOKENS) : new Uint32Array(WRITE_TOKENS);
  }

  /** Tokens pushed so far. */
  get total(): number {
    return this.count + this.held;
  }

  push(ids: Int32Array): void {
    for (let from = 0; from < ids.length;) {
      const n = Math.min(ids.length - from, this.buf.length - this.held);
      this.buf.set(ids.subarray(from, from + n), this.held);
      this.held += n;
      from += n;
      if (this.held === this.buf.length) this.flush();
    }
  }

  flush(): void {
    if (this.held === 0) return;
    writeSync(this.fd, new Uint8Array(this.buf.buffer, 0, this.held * this.width), 0, this.held * this.width, HEADER + this.count * this.width);
    this.count += this.held;
    this.held = 0;
  }
}

/** A token file open for reading by range. */
export class TokenFile {
  private scratch = new ArrayBuffer(0);

  private constructor(
    readonly path: string,
    private readonly fd: number,
    /** Bytes per token: 2 (uint16) or 4 (uint32). */
    readonly width: number,
    readonly vocabSize: number,
    /** Tokens in the corpus. */
    readonly tokens: number,
    /** Index of each document's first token (documents are stored in order). */
    readonly docStarts: Float64Array,
  ) {}

  static open(path: string): TokenFile {
    const fd = openSync(path, 'r');
    const h = new Uint8Array(HEADER);
    const got = readSync(fd, h, 0, HEADER, 0);
    const v = new DataView(h.buffer);
    if (got < HEADER || new TextDecoder().decode(h.subarray(0, 8)) !== MAGIC || v.getUint32(8, true) !== VERSION) {
      closeSync(fd);
      throw new DataError(path, 'is not a smolcluster token file (or one of another version): delete it and it is built again');
    }
    const width = v.getUint32(12, true);
    const tokens = v.getFloat64(24, true);
    const docs = v.getFloat64(32, true);
    const starts = new Float64Array(docs);
    readSync(fd, new Uint8Array(starts.buffer), 0, docs * 8, HEADER + tokens * width);
    return new TokenFile(path, fd, width, v.getUint32(16, true), tokens, starts);
  }

  get documents(): number {
    return this.docStarts.length;
  }

  /** Tokens [from, from + out.length) into `out`. */
  read(from: number, out: Int32Array): void {
    if (from < 0 || from + out.length > this.tokens) throw new RangeError(`${this.path}: tokens [${from}, ${from + out.length}) outside the ${this.tokens} it holds`);
    const length = out.length * this.width;
    // One scratch buffer, grown as needed: a window read allocates nothing.
    if (this.scratch.byteLength < length) this.scratch = new ArrayBuffer(length);
    readSync(this.fd, new Uint8Array(this.scratch, 0, length), 0, length, HEADER + from * this.width);
    out.set(this.width === 2 ? new Uint16Array(this.scratch, 0, out.length) : new Uint32Array(this.scratch, 0, out.length));
  }

  close(): void {
    closeSync(this.fd);
  }
}
