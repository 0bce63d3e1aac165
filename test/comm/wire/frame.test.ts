import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../../../src/util/errors.js';
import { DEFAULT_LIMITS, encodeFrame, HEADER_BYTES, joinTag, MessageType, PROTOCOL_VERSION, readHeader, splitTag, VersionMismatchError } from '../../../src/comm/wire/frame.js';

const h = { version: PROTOCOL_VERSION, type: MessageType.Data, rank: 3, seq: 7, tag: 0xfffffffe };

test('header round-trips and is a multiple of 8 bytes (aligned payloads)', () => {
  assert.equal(HEADER_BYTES % 8, 0);
  const f = encodeFrame(h, new Uint8Array([1, 2, 3]));
  assert.equal(f.length, HEADER_BYTES + 3);
  assert.deepEqual(readHeader(f, 0, PROTOCOL_VERSION, DEFAULT_LIMITS), { ...h, length: 3 });
  assert.equal(f.subarray(0, 4).toString('latin1'), 'SMCL');
});

test('tags split into two 32-bit words and back', () => {
  for (const t of [0, 1, 0xffffffff, 0x1_0000_0000, 2 ** 52 - 1, 12345 * 2 ** 32 + 678]) {
    const s = splitTag(t);
    assert.equal(joinTag(s.seq, s.tag), t);
  }
});

test('bad magic, unknown type, reserved flags, oversize and other versions are refused', () => {
  const bad = (mutate: (b: Buffer) => void): Buffer => {
    const b = encodeFrame(h, new Uint8Array(4));
    mutate(b);
    return b;
  };
  assert.throws(() => readHeader(bad((b) => b.write('HTTP', 0, 'latin1')), 0, 1, DEFAULT_LIMITS), /bad frame magic/);
  assert.throws(() => readHeader(bad((b) => (b[6] = 99)), 0, 1, DEFAULT_LIMITS), /unknown message type 99/);
  assert.throws(() => readHeader(bad((b) => (b[7] = 1)), 0, 1, DEFAULT_LIMITS), /reserved flags/);
  assert.throws(() => readHeader(bad((b) => b.writeUInt32LE(DEFAULT_LIMITS.maxData + 1, 20)), 0, 1, DEFAULT_LIMITS), ProtocolError);
  const control = encodeFrame({ ...h, type: MessageType.Hello }, new Uint8Array(DEFAULT_LIMITS.maxControl + 1));
  assert.throws(() => readHeader(control, 0, 1, DEFAULT_LIMITS), /oversize Hello frame/);
  assert.throws(() => readHeader(bad((b) => b.writeUInt16LE(2, 4)), 0, 1, DEFAULT_LIMITS), (e: Error) => e instanceof VersionMismatchError && /peer speaks v2, this node speaks v1/.test(e.message));
});
