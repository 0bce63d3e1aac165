/**
 * Frame fuzzing against live endpoints over TCP on 127.0.0.1: a rendezvous store (the master) with
 * real clients working, and a data listener whose real peer connects afterwards. 100,000+ random,
 * truncated, oversized and out-of-order frames arrive on thousands of connections; the endpoints
 * must keep serving their real peers throughout, accept them afterwards, and hold their memory.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { ProcessGroup } from '../../src/comm/process_group.js';
import { StoreClient } from '../../src/comm/store/client.js';
import { StoreServer } from '../../src/comm/store/server.js';
import { MeshListener } from '../../src/comm/tcp/mesh.js';
import { encodeFrame, HEADER_BYTES, MessageType, PROTOCOL_VERSION, writeHeader } from '../../src/comm/wire/frame.js';
import { collectGarbage } from '../../src/util/collect_garbage.js';
import { Rng } from '../../src/util/rng.js';
import { TOKEN } from './fixture.js';

const FRAMES = 100_000;
const PER_CONNECTION = 25;
const CONCURRENCY = 48;
const TYPES = [MessageType.Hello, MessageType.Auth, MessageType.Ready, MessageType.Error, MessageType.Data, MessageType.Bye, MessageType.StoreRequest, MessageType.StoreResponse];

/** One hostile frame: random bytes, a header with a random type and length (often oversized), a truncated one, or a plausible HELLO. */
function hostileFrame(rng: Rng): Buffer {
  switch (rng.int(5)) {
    case 0:
      return Buffer.from(Array.from({ length: 1 + rng.int(64) }, () => rng.int(256)));
    case 1: {
      const h = Buffer.alloc(HEADER_BYTES);
      const lengths = [0, 1 + rng.int(4096), 16 << 20, 1 << 30, 0xffffffff];
      writeHeader(h, 0, { version: PROTOCOL_VERSION, type: TYPES[rng.int(TYPES.length)], rank: rng.int(8) - 1, seq: rng.int(1000), tag: rng.int(1000), length: lengths[rng.int(lengths.length)] });
      return h;
    }
    case 2: {
      const f = encodeFrame({ version: PROTOCOL_VERSION, type: TYPES[rng.int(TYPES.length)], rank: 1, seq: 0, tag: 0 }, Buffer.alloc(1 + rng.int(512), rng.int(256)));
      return f.subarray(0, rng.int(f.length));
    }
    case 3: {
      const hello = { protocol: PROTOCOL_VERSION, purpose: rng.int(2) ? 'store' : 'data', worldSize: 2, rank: rng.int(3) - 1, signature: 'sig', nonce: 'ab'.repeat(16) };
      return encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Hello, rank: 1, seq: 0, tag: 0 }, Buffer.from(JSON.stringify(hello)));
    }
    default:
      return encodeFrame({ version: rng.int(3), type: rng.int(12), rank: 0, seq: 0, tag: 0 }, Buffer.alloc(rng.int(64)));
  }
}

/**
 * A full collection, so memory is compared on what the endpoints retain, not on garbage not yet
 * collected (on an idle machine the flood outruns the collector: +97 MB of dead buffers seen).
 */
async function collectSettledGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 50)); // backing stores are freed after the collection
  }
}

/** Writes `count` hostile frames on connections to `port`, CONCURRENCY at a time; returns frames sent. */
async function flood(port: number, count: number, seed: number): Promise<number> {
  const rng = new Rng(seed);
  let sent = 0;
  const one = (): Promise<void> => new Promise((resolve) => {
    const frames = Array.from({ length: PER_CONNECTION }, () => hostileFrame(rng));
    sent += frames.length;
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.end(Buffer.concat(frames));
    });
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('close', () => resolve());
  });
  const lanes = Array.from({ length: CONCURRENCY }, async () => {
    while (sent < count) await one();
  });
  await Promise.all(lanes);
  return sent;
}

test('≥ 100,000 hostile frames at a live store and data listener: real peers are served throughout, memory stays bounded', { timeout: 120_000 }, async () => {
  const common = { token: TOKEN, worldSize: 2, signature: 'sig' };
  const store = await StoreServer.start({ ...common, host: '127.0.0.1', port: 0, timeoutMs: 2000 });
  const clients = await Promise.all([0, 1].map((rank) => StoreClient.connect({ ...common, host: '127.0.0.1', port: store.port, rank, timeoutMs: 10_000 })));
  const listeners = await Promise.all([0, 1].map((rank) => MeshListener.open({ rank, size: 2, token: TOKEN, signature: 'sig', timeoutMs: 60_000 }, '127.0.0.1', 0)));
  try {
    await collectSettledGarbage();
    const before = process.memoryUsage();
    // Real store traffic all along: a round trip every few ms from both ranks.
    let served = 0;
    let fuzzing = true;
    const traffic = clients.map(async (c, rank) => {
      for (let i = 0; fuzzing; i++) {
        await c.set(`smolcluster/rank/${rank}/n`, String(i));
        assert.equal(Buffer.from(await clients[1 - rank].get(`smolcluster/rank/${rank}/n`)).toString(), String(i));
        served++;
      }
    });
    const t0 = Date.now();
    const [toStore, toData] = await Promise.all([flood(store.port, FRAMES * 0.7, 1), flood(listeners[0].port, FRAMES * 0.3, 2)]);
    fuzzing = false;
    await Promise.all(traffic);
    const ms = Date.now() - t0;
    await collectSettledGarbage();
    const after = process.memoryUsage();
    process.stdout.write(`# fuzz: ${toStore + toData} frames (${toStore} at the store, ${toData} at a data listener) in ${ms} ms; ` +
      `${served} real store round trips meanwhile; rss ${((after.rss - before.rss) / 2 ** 20).toFixed(1)} MiB, ` +
      `arrayBuffers ${((after.arrayBuffers - before.arrayBuffers) / 2 ** 20).toFixed(1)} MiB\n`);
    assert.ok(toStore + toData >= FRAMES, `${toStore + toData} frames`);
    assert.ok(served >= 10, `only ${served} real round trips during the fuzzing`);
    // No frame was allowed to make an endpoint allocate its claimed payload (16 MiB, 1 GiB, 4 GiB),
    // and no ended or refused connection keeps its 256 KiB read buffer: what may remain is at most
    // the open handshakes' (64 per endpoint, 16 MiB each at worst; measured 0.0 MiB).
    assert.ok(after.arrayBuffers - before.arrayBuffers < 16 * 2 ** 20, `arrayBuffers grew ${after.arrayBuffers - before.arrayBuffers} bytes`);
    assert.ok(after.rss - before.rss < 256 * 2 ** 20, `rss grew ${after.rss - before.rss} bytes`);
    assert.ok(store.usage.keys <= 2 && store.usage.waiters === 0, JSON.stringify(store.usage));
    // Afterwards: the store takes no new rank (both are held), but its clients work; the data
    // listeners still build their mesh and all-reduce.
    await clients[0].set('smolcluster/shared/after', 'fuzz');
    assert.equal(Buffer.from(await clients[1].get('smolcluster/shared/after')).toString(), 'fuzz');
    const addresses = listeners.map((l) => `127.0.0.1:${l.port}`);
    const transports = await Promise.all(listeners.map((l) => l.connect(addresses)));
    const sums = await Promise.all(transports.map((t, r) => new ProcessGroup(t).allReduce(Float32Array.of(r + 1, 10))));
    assert.deepEqual(sums.map((s) => [...s]), [[3, 20], [3, 20]]);
    await Promise.all(transports.map((t) => t.close()));
  } finally {
    for (const c of clients) c.close();
    for (const l of listeners) l.close();
    await store.close();
  }
});
