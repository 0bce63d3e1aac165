/**
 * GGUF headers read synchronously (src/nn/interchange/gguf_header.ts): every value type GGUF
 * defines, nested arrays, tensor infos and the data's alignment, each equal to what
 * `@huggingface/gguf`'s parser reads from the same bytes; corrupt headers refused by name, never
 * allocated from their counts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { GgufHeaderError, readGgufHeaderSync } from '../../../src/nn/interchange/gguf_header.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-gguf-header-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Little-endian header bytes, built field by field. */
class Header {
  private parts: Buffer[] = [];
  u8(v: number): this { return this.put(1, (b) => b.writeUInt8(v)); }
  u32(v: number): this { return this.put(4, (b) => b.writeUInt32LE(v)); }
  u64(v: bigint | number): this { return this.put(8, (b) => b.writeBigUInt64LE(BigInt(v))); }
  string(s: string): this { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.parts.push(b); return this; }
  raw(b: Buffer): this { this.parts.push(b); return this; }
  bytes(): Buffer { return Buffer.concat(this.parts); }
  private put(n: number, write: (b: Buffer) => void): this { const b = Buffer.alloc(n); write(b); this.parts.push(b); return this; }
}

/** A scalar of each type: its type id and its little-endian bytes. */
const SCALARS: [string, number, Buffer, unknown][] = [
  ['u8', 0, Buffer.from([250]), 250],
  ['i8', 1, Buffer.from([0xfe]), -2],
  ['u16', 2, Buffer.from([0x34, 0x12]), 0x1234],
  ['i16', 3, Buffer.from([0xff, 0xff]), -1],
  ['u32', 4, Buffer.from([1, 0, 0, 0x80]), 0x80000001],
  ['i32', 5, Buffer.from([0xfd, 0xff, 0xff, 0xff]), -3],
  ['f32', 6, (() => { const b = Buffer.alloc(4); b.writeFloatLE(1.5); return b; })(), 1.5],
  ['bool', 7, Buffer.from([1]), true],
  ['u64', 10, (() => { const b = Buffer.alloc(8); b.writeBigUInt64LE(2n ** 63n + 5n); return b; })(), 2n ** 63n + 5n],
  ['i64', 11, (() => { const b = Buffer.alloc(8); b.writeBigInt64LE(-7n); return b; })(), -7n],
  ['f64', 12, (() => { const b = Buffer.alloc(8); b.writeDoubleLE(0.1); return b; })(), 0.1],
];

/** A version-3 header: every scalar, a string, arrays (one of strings, one nested), two tensors, alignment 64. */
function fullHeader(): Buffer {
  const h = new Header().raw(Buffer.from('GGUF')).u32(3).u64(2).u64(SCALARS.length + 5);
  for (const [name, type, bytes] of SCALARS) h.string(`test.${name}`).u32(type).raw(bytes);
  h.string('general.alignment').u32(4).u32(64);
  h.string('test.string').u32(8).string('héllo ✓');
  h.string('test.strings').u32(9).u32(8).u64(3).string('a').string('').string('Ġthe');
  h.string('test.i32s').u32(9).u32(5).u64(2).raw(Buffer.from([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
  h.string('test.nested').u32(9).u32(9).u64(2).u32(0).u64(2).u8(1).u8(2).u32(8).u64(1).string('x');
  h.string('blk.0.attn_q.weight').u32(2).u64(32).u64(4).u32(8).u64(0);
  h.string('output_norm.weight').u32(1).u64(32).u32(0).u64(256);
  return h.bytes();
}

function write(name: string, header: Buffer, dataBytes = 0): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([header, Buffer.alloc(dataBytes)]));
  return path;
}

describe('readGgufHeaderSync', () => {
  it('reads every value type, nested arrays and tensor infos as @huggingface/gguf does', async () => {
    const header = fullHeader();
    const path = write('full.gguf', header, 64 + 384);
    const ours = readGgufHeaderSync(path);
    for (const [name, , , value] of SCALARS) {
      if (name === 'f32' || name === 'f64') assert.equal(ours.metadata[`test.${name}`], value);
      else assert.deepEqual(ours.metadata[`test.${name}`], value, name);
    }
    assert.equal(ours.metadata['test.string'], 'héllo ✓');
    assert.deepEqual(ours.metadata['test.strings'], ['a', '', 'Ġthe']);
    assert.deepEqual(ours.metadata['test.i32s'], [1, -1]);
    assert.deepEqual(ours.metadata['test.nested'], [[1, 2], ['x']]);
    assert.deepEqual(ours.tensors, [
      { name: 'blk.0.attn_q.weight', dims: [32, 4], type: 8, offset: 0 },
      { name: 'output_norm.weight', dims: [32], type: 0, offset: 256 },
    ]);
    assert.equal(ours.dataOffset, Math.ceil(header.length / 64) * 64);
    const theirs = await gguf(path, { allowLocalFile: true });
    for (const [key, value] of Object.entries(ours.metadata)) assert.deepEqual(value, theirs.metadata[key as keyof typeof theirs.metadata], key);
    assert.equal(ours.dataOffset, Number(theirs.tensorDataOffset));
    assert.deepEqual(ours.tensors.map((t) => [t.name, t.dims, t.type, t.offset]), theirs.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)]));
  });

  it('reads a header longer than its first read (strings across the buffer\'s growth)', () => {
    const tokens = Array.from({ length: 60_000 }, (_, i) => `token-${i}-${'x'.repeat(i % 13)}`);
    const h = new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).string('tokenizer.ggml.tokens').u32(9).u32(8).u64(tokens.length);
    for (const t of tokens) h.string(t);
    const header = h.bytes();
    assert.ok(header.length > 1 << 20, 'the header passes the first 1 MB read');
    const ours = readGgufHeaderSync(write('long.gguf', header));
    assert.deepEqual(ours.metadata['tokenizer.ggml.tokens'], tokens);
    assert.equal(ours.dataOffset, Math.ceil(header.length / 32) * 32);
  });

  it('keeps a "__proto__" key as the file\'s own key, not the metadata object\'s prototype', () => {
    const header = new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).string('__proto__').u32(9).u32(8).u64(1).string('x').bytes();
    const { metadata } = readGgufHeaderSync(write('proto.gguf', header));
    assert.deepEqual(Object.keys(metadata), ['__proto__']);
    assert.deepEqual(metadata['__proto__'], ['x']);
    assert.equal(Object.getPrototypeOf(metadata), null);
  });

  const refused: [string, () => Buffer, RegExp][] = [
    ['a key given twice', () => new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(2).string('k').u32(4).u32(1).string('k').u32(4).u32(2).bytes(), /metadata k is given twice/],
    ['a file without the magic', () => Buffer.from('GGUX'.padEnd(64, '\0')), /no GGUF magic/],
    ['version 1', () => new Header().raw(Buffer.from('GGUF')).u32(1).u64(0).u64(0).bytes(), /GGUF version 1; we read versions 2 and 3/],
    ['a big-endian file', () => new Header().raw(Buffer.from('GGUF')).raw(Buffer.from([0, 0, 0, 3])).u64(0).u64(0).bytes(), /big-endian/],
    ['a tensor count the file cannot hold', () => new Header().raw(Buffer.from('GGUF')).u32(3).u64(2n ** 40n).u64(0).bytes(), /the tensor count is 1099511627776, which runs past the file's end \(\d+ bytes\)/],
    ['an array length the file cannot hold', () => new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).string('k').u32(9).u32(4).u64(1e12).bytes(), /metadata k's length is 1000000000000/],
    ['an unknown value type', () => new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).string('test.odd').u32(13).u32(0).bytes(), /metadata test\.odd has value type 13/],
    ['an array of an unknown type', () => new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).string('test.odd').u32(9).u32(99).u64(0).bytes(), /metadata test\.odd is an array of value type 99/],
    ['arrays nested too deep', () => {
      const h = new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).string('deep').u32(9);
      for (let i = 0; i < 5; i++) h.u32(9).u64(1);
      return h.u32(0).u64(0).bytes();
    }, /metadata deep nests arrays 4 deep/],
    ['a tensor of five dimensions', () => new Header().raw(Buffer.from('GGUF')).u32(3).u64(1).u64(0).string('t').u32(5).raw(Buffer.alloc(60)).bytes(), /tensor t has 5 dimensions \(1 to 4\)/],
    ['a header cut short', () => fullHeader().subarray(0, 300), /runs past the file's end \(300 bytes\)/],
    ['an alignment that is not a power of two', () => new Header().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).string('general.alignment').u32(4).u32(48).bytes(), /general\.alignment 48 is not a power of two/],
  ];
  for (const [what, bytes, message] of refused) {
    it(`refuses ${what} by name`, () => {
      const path = write(`refused-${what.replace(/\W+/g, '-')}.gguf`, bytes());
      assert.throws(() => readGgufHeaderSync(path), (e: unknown) => e instanceof GgufHeaderError && message.test(e.message));
    });
  }
});
