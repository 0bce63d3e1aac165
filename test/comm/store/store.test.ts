import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { StoreClient, type StoreClientConfig } from '../../../src/comm/store/client.js';
import { StoreTimeoutError } from '../../../src/comm/store/protocol.js';
import { StoreServer } from '../../../src/comm/store/server.js';
import { PeerError } from '../../../src/util/errors.js';
import { TOKEN } from '../fixture.js';

const common = { token: TOKEN, worldSize: 3, signature: 'sig' };

async function withStore(fn: (server: StoreServer, client: (rank: number, extra?: Partial<StoreClientConfig>) => Promise<StoreClient>) => Promise<void>): Promise<void> {
  const server = await StoreServer.start({ ...common, host: '127.0.0.1', port: 0 });
  const clients: StoreClient[] = [];
  try {
    await fn(server, async (rank, extra = {}) => {
      const c = await StoreClient.connect({ ...common, host: '127.0.0.1', port: server.port, rank, timeoutMs: 2000, ...extra });
      clients.push(c);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await server.close();
  }
}

/** A key every rank may write (keys.ts). */
const S = (name: string): string => `smolcluster/shared/${name}`;

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

test('set/get/add/compareSet/delete, and get waits for a later set', async () => {
  await withStore(async (_server, client) => {
    const a = await client(0);
    const b = await client(1);
    const later = a.get(S('k'));
    await b.set(S('k'), 'v1');
    assert.equal(text(await later), 'v1');
    assert.equal(await a.add(S('n'), 2), 2);
    assert.equal(await b.add(S('n'), 3), 5);
    assert.equal(text(await a.compareSet(S('k'), 'nope', 'x')), 'v1');
    assert.equal(text(await a.compareSet(S('k'), 'v1', 'v2')), 'v2');
    assert.equal(text(await a.compareSet(S('fresh'), null, 'first')), 'first');
    await a.delete(S('k'));
    await assert.rejects(a.get(S('k'), 50), StoreTimeoutError);
    const bin = new Uint8Array([0, 255, 1]);
    await a.set(S('bin'), bin);
    assert.deepEqual(new Uint8Array(await b.get(S('bin'))), bin);
  });
});

test('wait names the keys that never appeared', async () => {
  await withStore(async (_server, client) => {
    const a = await client(0);
    await a.set(S('x'), '1');
    await assert.rejects(a.wait([S('x'), S('y'), S('z')], 100), (e: Error) => e instanceof StoreTimeoutError && e.missing.join() === `${S('y')},${S('z')}` && /missing keys: smolcluster\/shared\/y, smolcluster\/shared\/z/.test(e.message));
  });
});

test('ranks: a duplicate is refused on both sides, -1 gets one assigned, a full world refuses', async () => {
  await withStore(async (server, client) => {
    await client(1);
    await assert.rejects(client(1), (e: Error) => e instanceof PeerError && /refused the connection: rank 1 is already taken by 127\.0\.0\.1:\d+/.test(e.message));
    const auto = await client(-1);
    assert.equal(auto.rank, 0);
    assert.equal((await client(-1)).rank, 2);
    await assert.rejects(client(-1), /all 3 ranks are taken/);
    await assert.rejects(client(7), /rank 7 is out of range for world size 3/);
    assert.deepEqual(server.ranks, [0, 1, 2]);
  });
});

test('a wrong token or world size is refused with the reason', async () => {
  await withStore(async (_server, client) => {
    await assert.rejects(client(0, { token: 'wrong-token-wrong-token' }), /authentication failed/);
    await assert.rejects(client(0, { worldSize: 4 }), /world size mismatch: (rank 0 has 4, the store has 3|the store has 3, rank 0 has 4)/);
  });
});

test('a client sending garbage is dropped; the others are served on', async () => {
  await withStore(async (server, client) => {
    const a = await client(0);
    const junk = net.connect(server.port, '127.0.0.1', () => junk.write('\x00'.repeat(100)));
    junk.resume();
    await new Promise((r) => junk.once('close', r));
    await a.set(S('still'), 'here');
    assert.equal(text(await a.get(S('still'))), 'here');
  });
});

test('a rank writes only its own keys and the shared ones; anyone reads', async () => {
  await withStore(async (_server, client) => {
    const a = await client(0);
    const b = await client(1);
    await a.set('smolcluster/addr/0', '127.0.0.1:1');
    await a.set('smolcluster/rank/0/step', '5');
    await assert.rejects(b.set('smolcluster/addr/0', '10.6.6.6:1'), /NOT_OWNER|"smolcluster\/addr\/0" belongs to rank 0, not to rank 1/);
    await assert.rejects(b.delete('smolcluster/rank/0/step'), /belongs to rank 0, not to rank 1/);
    await assert.rejects(b.add('smolcluster/rank/0/step', 1), /belongs to rank 0/);
    await assert.rejects(b.compareSet('smolcluster/addr/0', '127.0.0.1:1', 'x'), /belongs to rank 0/);
    await assert.rejects(b.set('anything', 'x'), /"anything" is not a key of the protocol/);
    assert.equal(text(await b.get('smolcluster/addr/0')), '127.0.0.1:1');
    assert.equal(text(await b.get('smolcluster/rank/0/step')), '5');
  });
});

test('the store is bounded in keys and bytes, and refuses past them without dropping the client', async () => {
  const server = await StoreServer.start({ ...common, host: '127.0.0.1', port: 0, limits: { maxKeys: 5, maxBytes: 4096 } });
  const a = await StoreClient.connect({ ...common, host: '127.0.0.1', port: server.port, rank: 0, timeoutMs: 2000 });
  try {
    for (let i = 0; i < 5; i++) await a.set(S(`k${i}`), 'v');
    await assert.rejects(a.set(S('k5'), 'v'), /holds its limit of 5 keys; "smolcluster\/shared\/k5" was not set/);
    await a.set(S('k0'), 'overwriting is fine');
    await assert.rejects(a.set(S('k1'), new Uint8Array(5000)), /past its limit of 4096 bytes/);
    assert.deepEqual({ keys: server.usage.keys }, { keys: 5 });
    await a.delete(S('k4'));
    await a.set(S('k5'), 'room again');
    assert.ok(server.usage.bytes < 200, `${server.usage.bytes} bytes`);
  } finally {
    a.close();
    await server.close();
  }
});

test('a client\'s waits end with its connection; wait deadlines are capped', async () => {
  const server = await StoreServer.start({ ...common, host: '127.0.0.1', port: 0, limits: { maxWaitMs: 100 } });
  try {
    const a = await StoreClient.connect({ ...common, host: '127.0.0.1', port: server.port, rank: 0, timeoutMs: 2000 });
    const waits = Array.from({ length: 20 }, (_, i) => a.get(S(`never${i}`), 60_000).catch(() => 'gone'));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(server.usage.waiters >= 1);
    a.close();
    assert.deepEqual(new Set(await Promise.all(waits)), new Set(['gone']));
    for (let i = 0; i < 50 && server.usage.waiters > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.usage.waiters, 0, 'the closed client\'s waits must be released');
    const b = await StoreClient.connect({ ...common, host: '127.0.0.1', port: server.port, rank: 1, timeoutMs: 2000 });
    const t0 = Date.now();
    await assert.rejects(b.get(S('never'), 60_000), StoreTimeoutError);
    assert.ok(Date.now() - t0 < 5000, 'a 60 s wait is held at most maxWaitMs');
    b.close();
  } finally {
    await server.close();
  }
});

test('a store that goes away (its host process ended) fails every request with an error naming its address', async () => {
  const server = await StoreServer.start({ ...common, host: '127.0.0.1', port: 0 });
  const client = await StoreClient.connect({ ...common, host: '127.0.0.1', port: server.port, rank: 1, timeoutMs: 2000 });
  const port = server.port;
  await server.close();
  const named = (e: Error): boolean => e instanceof PeerError && e.message.includes(`127.0.0.1:${port}`) && /rendezvous store went away/.test(e.message);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the goodbye reaches the client
  await assert.rejects(client.get(S('never'), 5000), named);
  await assert.rejects(client.set(S('x'), 'y'), named);
  assert.equal(client.failed, true);
  client.close();
});

test('a store hosted by rank 0 (firstAssigned 1) hands a client that asks for a rank the lowest free one from 1, and rank 0 stays its host\'s', async () => {
  const server = await StoreServer.start({ ...common, host: '127.0.0.1', port: 0, firstAssigned: 1 });
  const connect = (rank: number): Promise<StoreClient> => StoreClient.connect({ ...common, host: '127.0.0.1', port: server.port, rank, timeoutMs: 2000 });
  const clients: StoreClient[] = [];
  try {
    clients.push(await connect(-1));
    assert.equal(clients[0].rank, 1, 'a discovered worker took rank 0 before rank 0 claimed it');
    clients.push(await connect(0));
    clients.push(await connect(-1));
    assert.equal(clients[2].rank, 2);
    await assert.rejects(connect(-1), /all 3 ranks are taken/);
  } finally {
    for (const c of clients) c.close();
    await server.close();
  }
});
