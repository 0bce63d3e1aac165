/**
 * Reader for the IDX format of the original MNIST distribution (and EMNIST, Fashion-MNIST, ...):
 * a big-endian header — two zero bytes, a data-type byte, a dimension-count byte, then one uint32
 * per dimension — followed by the raw values. Only unsigned-byte data (type 0x08) is supported,
 * which is what those datasets use.
 *
 * Files may be gzip'ed (as downloaded); gzip is detected from the content, not the name, because
 * browsers often decompress a download and keep the `.gz` name.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError } from './errors.js';

/** What the caller expects the file to hold; decides the magic number and dimension count. */
export type IdxKind = 'labels' | 'images';

export interface IdxArray {
  readonly file: string;
  /** Declared sizes, e.g. [60000, 28, 28]. */
  readonly dims: readonly number[];
  /** The values, row-major; a view into the file's bytes. */
  readonly data: Uint8Array;
}

const UBYTE = 0x08;
const EXPECTED_DIMS: Record<IdxKind, number> = { labels: 1, images: 3 };
const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** Reads and validates an IDX file (plain or gzip'ed) holding `kind`. Throws DataError. */
export function readIdxFile(file: string, kind: IdxKind): IdxArray {
  let raw: Uint8Array;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new DataError(file, `cannot read: ${(err as Error).message}`);
  }
  return parseIdx(raw, file, kind);
}

/** Validates IDX bytes (plain or gzip'ed); `file` names the source in errors. */
export function parseIdx(raw: Uint8Array, file: string, kind: IdxKind): IdxArray {
  const gzipped = isGzip(raw);
  const bytes = gzipped ? gunzip(raw, file) : raw;
  const dims = readHeader(bytes, file, kind);
  checkLength(bytes, file, kind, dims, gzipped);
  // A plain Uint8Array view (not a Buffer) keeps element access monomorphic in hot loops.
  const start = headerBytes(dims.length);
  return { file, dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + start, bytes.length - start) };
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzip(raw: Uint8Array, file: string): Uint8Array {
  try {
    return gunzipSync(raw);
  } catch (err) {
    throw new DataError(file, `corrupt or truncated gzip data (${(err as Error).message})`);
  }
}

function headerBytes(ndims: number): number {
  return 4 + 4 * ndims;
}

function hex32(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}

/** Checks the magic number and returns the declared dimensions. */
function readHeader(bytes: Uint8Array, file: string, kind: IdxKind): number[] {
  const ndims = EXPECTED_DIMS[kind];
  const expectedMagic = (UBYTE << 8) | ndims;
  const want = `expected ${hex32(expectedMagic)} (IDX unsigned-byte ${kind}, ${ndims} dimension${ndims > 1 ? 's' : ''})`;
  if (bytes.length < 4) {
    throw new DataError(file, `truncated: file has ${bytes.length} bytes, too short for an IDX magic number`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(file, `not an IDX file: magic number ${hex32(magic)}, ${want}`);
  }
  if (bytes[2] !== UBYTE) {
    const type = TYPE_NAMES[bytes[2]] ?? 'unknown';
    throw new DataError(file, `unsupported IDX data type 0x${bytes[2].toString(16).padStart(2, '0')} (${type}) in magic number ${hex32(magic)}, ${want}`);
  }
  if (bytes[3] !== ndims) {
    throw new DataError(file, `wrong dimension count ${bytes[3]} in magic number ${hex32(magic)}, ${want}`);
  }
  if (bytes.length < headerBytes(ndims)) {
    throw new DataError(file, `truncated: file has ${bytes.length} bytes, shorter than the ${headerBytes(ndims)}-byte IDX header`);
  }
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  return dims;
}

/** The file must hold exactly the header plus product(dims) bytes: no less, no trailing junk. */
function checkLength(bytes: Uint8Array, file: string, kind: IdxKind, dims: number[], gzipped: boolean): void {
  let count = 1;
  for (const d of dims) count *= d;
  const expected = headerBytes(dims.length) + count;
  if (bytes.length === expected) return;
  const problem = bytes.length < expected ? 'truncated' : 'oversized';
  const actual = `${bytes.length} bytes${gzipped ? ' after decompression' : ''}`;
  throw new DataError(file, `${problem}: header declares ${dims.join('×')} ${kind} (${expected} bytes) but file has ${actual}`);
}
