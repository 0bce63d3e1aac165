import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LIMITS, encodeFrame, MessageType, PROTOCOL_VERSION, type FrameHeader } from '../../../src/comm/wire/frame.js';
import { FrameReader, type FrameSink } from '../../../src/comm/wire/reader.js';

interface Got {
  h: FrameHeader;
  payload: Uint8Array;
}

function collector(): { sink: FrameSink; got: Got[]; targets: Set<ArrayBufferLike> } {
  const state = { got: [] as Got[], targets: new Set<ArrayBufferLike>(), sink: null as unknown as FrameSink };
  state.sink = {
    target: (h) => {
      const t = new Uint8Array(h.length);
      state.targets.add(t.buffer);
      return t;
    },
    frame: (h, payload) => state.got.push({ h, payload }),
  };
  return state;
}

function frames(count: number): { bytes: Buffer; payloads: Uint8Array[] } {
  const payloads: Uint8Array[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const len = [0, 1, 7, 100, 20_000, 70_001][i % 6];
    const p = new Uint8Array(len).map((_, j) => (i * 31 + j) & 255);
    payloads.push(p);
    parts.push(encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Data, rank: 1, seq: 0, tag: i }, p));
  }
  return { bytes: Buffer.concat(parts), payloads };
}

function rng(seed: number): () => number {
  let x = seed;
  return () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

test('frames split across chunks and many frames per chunk (push mode)', () => {
  const { bytes, payloads } = frames(40);
  for (const maxChunk of [1, 5, 24, 25, 1000, 1 << 20]) {
    const c = collector();
    const reader = new FrameReader(c.sink, { version: PROTOCOL_VERSION, limits: DEFAULT_LIMITS, stagingBytes: 64 << 10 });
    const rand = rng(maxChunk);
    for (let off = 0; off < bytes.length; ) {
      const k = Math.max(1, Math.floor(rand() * maxChunk));
      reader.push(bytes.subarray(off, off + k));
      off += k;
    }
    assert.equal(c.got.length, payloads.length, `chunk ${maxChunk}`);
    c.got.forEach((g, i) => {
      assert.equal(g.h.tag, i);
      assert.deepEqual(g.payload, payloads[i]);
    });
    assert.equal(reader.midFrame, false);
  }
});

test('read-into-my-buffer mode: large payloads land directly in their target', () => {
  const { bytes, payloads } = frames(30);
  const c = collector();
  const reader = new FrameReader(c.sink, { version: PROTOCOL_VERSION, limits: DEFAULT_LIMITS });
  const rand = rng(7);
  let direct = 0;
  for (let off = 0; off < bytes.length; ) {
    const buf = reader.nextBuffer();
    if (c.targets.has(buf.buffer)) direct++;
    const k = Math.min(buf.length, bytes.length - off, 1 + Math.floor(rand() * 50_000));
    buf.set(bytes.subarray(off, off + k));
    reader.commit(k);
    off += k;
  }
  assert.equal(c.got.length, 30);
  c.got.forEach((g, i) => assert.deepEqual(g.payload, payloads[i]));
  assert.ok(direct > 0, 'some reads went straight to a payload target');
});

test('garbage drops with a ProtocolError; a partial frame is reported as truncated', () => {
  const c = collector();
  const reader = new FrameReader(c.sink, { version: PROTOCOL_VERSION, limits: DEFAULT_LIMITS });
  assert.throws(() => reader.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), /bad frame magic/);
  const r2 = new FrameReader(collector().sink, { version: PROTOCOL_VERSION, limits: DEFAULT_LIMITS });
  const f = encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Data, rank: 0, seq: 0, tag: 0 }, new Uint8Array(100));
  r2.push(f.subarray(0, 60));
  assert.equal(r2.midFrame, true);
  assert.match(r2.describeTruncation(), /got 36 of 100 payload bytes/);
});

test('a reader holds no buffer before its first read, and none once released (later bytes are dropped unread)', () => {
  const { sink, got } = collector();
  const reader = new FrameReader(sink, { version: PROTOCOL_VERSION, limits: DEFAULT_LIMITS });
  assert.equal(reader.heldBytes, 0);
  const big = encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Data, rank: 1, seq: 0, tag: 0 }, new Uint8Array(100_000));
  reader.push(big.subarray(0, 50_000));
  assert.ok(reader.heldBytes >= 100_000, `${reader.heldBytes} bytes held mid-frame`);
  reader.release();
  assert.equal(reader.heldBytes, 0);
  reader.push(big.subarray(50_000));
  reader.commit(reader.nextBuffer().length);
  reader.push(encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Data, rank: 1, seq: 1, tag: 0 }, new Uint8Array(3)));
  assert.equal(got.length, 0);
  assert.equal(reader.heldBytes, 0);
  assert.equal(reader.midFrame, false);
});
