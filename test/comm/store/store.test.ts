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

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

test('set/get/add/compareSet/delete, and get waits for a later set', async () => {
  await withStore(async (_server, client) => {
    const a = await client(0);
    const b = await client(1);
    const later = a.get('k');
    await b.set('k', 'v1');
    assert.equal(text(await later), 'v1');
    assert.equal(await a.add('n', 2), 2);
    assert.equal(await b.add('n', 3), 5);
    assert.equal(text(await a.compareSet('k', 'nope', 'x')), 'v1');
    assert.equal(text(await a.compareSet('k', 'v1', 'v2')), 'v2');
    assert.equal(text(await a.compareSet('fresh', null, 'first')), 'first');
    await a.delete('k');
    await assert.rejects(a.get('k', 50), StoreTimeoutError);
    const bin = new Uint8Array([0, 255, 1]);
    await a.set('bin', bin);
    assert.deepEqual(new Uint8Array(await b.get('bin')), bin);
  });
});

test('wait names the keys that never appeared', async () => {
  await withStore(async (_server, client) => {
    const a = await client(0);
    await a.set('x', '1');
    await assert.rejects(a.wait(['x', 'y', 'z'], 100), (e: Error) => e instanceof StoreTimeoutError && e.missing.join() === 'y,z' && /missing keys: y, z/.test(e.message));
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
    await a.set('still', 'here');
    assert.equal(text(await a.get('still')), 'here');
  });
});
