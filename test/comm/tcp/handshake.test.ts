import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection } from '../../../src/comm/tcp/connection.js';
import { acceptHandshake, dialHandshake, PendingHandshakes, type HandshakeConfig } from '../../../src/comm/tcp/handshake.js';
import { encodeFrame, HEADER_BYTES, MessageType, PROTOCOL_VERSION, writeHeader } from '../../../src/comm/wire/frame.js';
import { boundPort, listen } from '../../../src/comm/tcp/net.js';
import { PeerError } from '../../../src/util/errors.js';
import { TOKEN } from '../fixture.js';

const base: HandshakeConfig = { token: TOKEN, worldSize: 4, signature: 'mlp-784-128-10', purpose: 'data', rank: 0, timeoutMs: 3000 };

/** Runs one handshake between an acceptor and a dialer; returns each side's error (or null). */
async function shake(acceptor: Partial<HandshakeConfig>, dialer: Partial<HandshakeConfig>, versions: [number?, number?] = []): Promise<{ accept: Error | null; dial: Error | null }> {
  let accepting: Promise<Error | null> = Promise.resolve(null);
  const server = await listen('127.0.0.1', 0, (socket) => {
    const conn = Connection.accept(socket, { version: versions[0] });
    accepting = acceptHandshake(conn, { ...base, ...acceptor }, (hello) => hello.rank).then(
      () => null,
      (e: Error) => e,
    );
  });
  try {
    const conn = await Connection.dial('127.0.0.1', boundPort(server), { version: versions[1] });
    const dial = await dialHandshake(conn, { ...base, rank: 1, ...dialer }).then(
      () => null,
      (e: Error) => e,
    );
    conn.destroy();
    return { accept: await accepting, dial };
  } finally {
    server.close();
  }
}

test('matching peers connect', async () => {
  const r = await shake({}, {});
  assert.equal(r.accept, null);
  assert.equal(r.dial, null);
});

for (const [what, acceptor, dialer, pattern, versions] of [
  ['wrong token', {}, { token: 'another-token-0123456789' }, /authentication failed: .*different cluster tokens/, []],
  ['world size', {}, { worldSize: 3 }, /world size mismatch: rank [01] has [34], rank [01] has [34]/, []],
  ['model signature', {}, { signature: 'cnn' }, /model signature mismatch: .*"mlp-784-128-10".*|.*"cnn".*/, []],
  ['protocol version', {}, {}, /protocol version mismatch: peer speaks v\d+, this node speaks v\d+/, [1, 2]],
] as const) {
  test(`a peer with the wrong ${what} is refused on both sides, saying why`, async () => {
    const r = await shake(acceptor, dialer, versions as unknown as [number?, number?]);
    assert.ok(r.accept instanceof PeerError, `acceptor: ${String(r.accept)}`);
    assert.ok(r.dial instanceof PeerError, `dialer: ${String(r.dial)}`);
    assert.match(r.accept.message, pattern);
    assert.match(r.dial.message, pattern);
  });
}

test('the acceptor refuses an unwanted rank and the dialer hears why', async () => {
  const server = await listen('127.0.0.1', 0, (socket) => {
    const conn = Connection.accept(socket);
    acceptHandshake(conn, base, () => ({ code: 'DUPLICATE_RANK', message: 'rank 1 is already connected from 10.0.0.9:1234' })).catch(() => {});
  });
  const conn = await Connection.dial('127.0.0.1', boundPort(server));
  await assert.rejects(dialHandshake(conn, { ...base, rank: 1 }), /refused the connection: rank 1 is already connected from 10.0.0.9:1234/);
  server.close();
});

test('a silent peer makes the handshake time out', async () => {
  const server = await listen('127.0.0.1', 0, () => {});
  const conn = await Connection.dial('127.0.0.1', boundPort(server));
  await assert.rejects(dialHandshake(conn, { ...base, timeoutMs: 100 }), /^TimeoutError: handshake timed out after 100 ms/);
  server.close();
});

test('data sent right behind READY, in the same TCP segment, is kept for the receiver', { timeout: 5000 }, async () => {
  // A hand-written acceptor (from docs/PROTOCOL.md): it answers the dialer's AUTH with AUTH, READY
  // and a DATA frame in a single write, before the dialer's code can install its receive path.
  const { createHmac, randomBytes } = await import('node:crypto');
  const { encodeFrame, MessageType: T, PROTOCOL_VERSION: V, DEFAULT_LIMITS } = await import('../../../src/comm/wire/frame.js');
  const { FrameReader } = await import('../../../src/comm/wire/reader.js');
  const hello = Buffer.from(JSON.stringify({ protocol: V, purpose: 'data', worldSize: 4, rank: 0, signature: base.signature, nonce: randomBytes(16).toString('hex') }));
  const server = await listen('127.0.0.1', 0, (socket) => {
    let dialerHello: Uint8Array | null = null;
    const reader = new FrameReader(
      {
        target: (h) => new Uint8Array(h.length),
        frame: (h, payload) => {
          if (h.type === T.Hello) dialerHello = payload;
          if (h.type !== T.Auth) return;
          const mac = createHmac('sha256', TOKEN).update('smolcluster-auth-v1\0acceptor\0').update(dialerHello!).update('\0').update(hello).digest();
          const f = (type: number, payload: Uint8Array, tag = 0): Buffer => encodeFrame({ version: V, type, rank: 0, seq: 0, tag }, payload);
          socket.write(Buffer.concat([f(T.Auth, mac), f(T.Ready, Buffer.from('{"rank":1}')), f(T.Data, new Uint8Array([42, 43]), 7)]));
        },
      },
      { version: V, limits: DEFAULT_LIMITS },
    );
    socket.on('data', (chunk) => reader.push(chunk));
    socket.write(encodeFrame({ version: V, type: T.Hello, rank: 0, seq: 0, tag: 0 }, hello));
  });
  const conn = await Connection.dial('127.0.0.1', boundPort(server));
  await dialHandshake(conn, { ...base, rank: 1 });
  const got = await new Promise<{ tag: number; payload: Uint8Array }>((resolve) => {
    conn.setSink({ target: (h) => new Uint8Array(h.length), frame: (h, payload) => resolve({ tag: h.tag, payload }) });
  });
  assert.equal(got.tag, 7);
  assert.deepEqual([...got.payload], [42, 43]);
  conn.destroy();
  server.close();
});

/** A raw socket speaking frames by hand: what an attacker without the token can send. */
async function rawPeer(port: number): Promise<{ socket: import('node:net').Socket; received: () => Buffer; closed: Promise<void> }> {
  const net = await import('node:net');
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

function helloFrom(rank: number): Buffer {
  const hello = { protocol: PROTOCOL_VERSION, purpose: 'data', worldSize: 4, rank, signature: base.signature, nonce: '00'.repeat(16) };
  return encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Hello, rank, seq: 0, tag: 0 }, Buffer.from(JSON.stringify(hello)));
}

/** A header claiming `length` payload bytes of `type` (no payload follows). */
function header(type: MessageType, length: number): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  writeHeader(out, 0, { version: PROTOCOL_VERSION, type, rank: 1, seq: 0, tag: 0, length });
  return out;
}

for (const [what, frames, pattern] of [
  ['a STORE_REQUEST header of 16 MiB', () => [header(MessageType.StoreRequest, 16 << 20)], /StoreRequest frame before the peer authenticated/],
  ['READY after HELLO (the acceptor never takes READY)', () => [helloFrom(1), encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Ready, rank: 1, seq: 0, tag: 0 }, Buffer.from('{"rank":1}'))], /Ready frame before the peer authenticated/],
  ['HELLO, READY and a 1 GiB DATA header', () => [helloFrom(1), header(MessageType.Data, 1 << 30)], /Data frame before the peer authenticated/],
  ['a HELLO header larger than a control frame', () => [header(MessageType.Hello, (64 << 10) + 1)], /oversize Hello frame/],
] as const) {
  test(`before authentication an acceptor drops ${what}, allocating nothing`, async () => {
    let failure: Error | null = null;
    const done = new Promise<void>((resolve) => {
      void listen('127.0.0.1', 0, (socket) => {
        const conn = Connection.accept(socket);
        conn.on('closed', (err: Error | null) => {
          failure = err;
          resolve();
        });
        acceptHandshake(conn, base, (hello) => hello.rank).catch(() => {});
      }).then(async (server) => {
        const peer = await rawPeer(boundPort(server));
        for (const f of frames()) peer.socket.write(f);
        await peer.closed;
        server.close();
      });
    });
    await done;
    assert.match(String(failure), pattern);
  });
}

test('the dialer proves its key first: a client without the token never receives the acceptor\'s MAC', async () => {
  const server = await listen('127.0.0.1', 0, (socket) => {
    const conn = Connection.accept(socket);
    acceptHandshake(conn, base, (hello) => hello.rank).catch(() => {});
  });
  const peer = await rawPeer(boundPort(server));
  peer.socket.write(helloFrom(1));
  peer.socket.write(encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Auth, rank: 1, seq: 0, tag: 0 }, Buffer.alloc(32, 7)));
  await peer.closed;
  server.close();
  const got = peer.received();
  const types: number[] = [];
  for (let off = 0; off + HEADER_BYTES <= got.length; off += HEADER_BYTES + got.readUInt32LE(off + 20)) types.push(got[off + 6]);
  assert.deepEqual(types, [MessageType.Hello, MessageType.Error], 'HELLO, then the refusal: no AUTH');
});

test('pending handshakes are capped: a flood of idle sockets drops the oldest, and a real peer still gets in', async () => {
  const pending = new PendingHandshakes(8);
  const server = await listen('127.0.0.1', 0, (socket) => {
    const conn = Connection.accept(socket);
    acceptHandshake(conn, { ...base, timeoutMs: 20_000 }, (hello) => hello.rank, pending).catch(() => {});
  });
  const idle = await Promise.all(Array.from({ length: 30 }, () => rawPeer(boundPort(server))));
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(pending.size <= 8, `pending ${pending.size}`);
  const conn = await Connection.dial('127.0.0.1', boundPort(server));
  const res = await dialHandshake(conn, { ...base, rank: 1 });
  assert.equal(res.rank, 1);
  conn.destroy();
  for (const p of idle) p.socket.destroy();
  server.close();
});
