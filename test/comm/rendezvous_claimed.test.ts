/**
 * A rank claimed before the rendezvous (a worker that found its master by DNS-SD asks the store
 * for a rank, then goes on over that connection): the store that rank 0 hosts never hands out 0,
 * and the claimed connection is the one the rendezvous uses.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { rendezvous, type RendezvousOptions } from '../../src/comm/rendezvous.js';
import { StoreClient } from '../../src/comm/store/client.js';
import { TOKEN, rankData } from './fixture.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const base = (port: number, rank: number, n: number): RendezvousOptions => ({ rank, worldSize: n, masterHost: '127.0.0.1', masterPort: port, token: TOKEN, signature: 'mlp', timeoutMs: 5000 });

test('workers that claimed ranks from rank 0\'s store (rank -1) get 1 and 2, even when they dial before rank 0 claims 0, and the rendezvous goes on over their connections', async () => {
  const port = await freePort();
  const master = rendezvous(base(port, 0, 3));
  // Dialed at once: the store may not be listening yet (the client retries), and rank 0's own client may not have claimed 0.
  const claimed = await Promise.all([0, 1].map(() => StoreClient.connect({ host: '127.0.0.1', port, token: TOKEN, worldSize: 3, signature: 'mlp', rank: -1, timeoutMs: 5000 })));
  assert.deepEqual(claimed.map((c) => c.rank).sort(), [1, 2]);
  const workers = claimed.map((store) => rendezvous({ ...base(port, store.rank, 3), store }));
  const clusters = await Promise.all([master, ...workers]);
  try {
    for (const [i, store] of claimed.entries()) assert.equal(clusters[i + 1].store, store, 'the rendezvous dialed the store again');
    assert.deepEqual(clusters[0].storeServer?.ranks, [0, 1, 2]);
    const out = await Promise.all(clusters.map((c) => c.group.allReduce(rankData(c.rank, 100), { op: 'avg' })));
    assert.deepEqual(out[1], out[0]);
  } finally {
    await Promise.all(clusters.map((c) => c.close()));
  }
});
