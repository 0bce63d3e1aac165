/**
 * comm/hub.ts over real loopback sockets: a spoke that comes back as a new process is swapped in
 * (messages numbered from zero again), a spoke re-dials a hub that restarted on another port, and
 * the deadline's error names the hub when it never comes back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DOOR_KEY, HubDoor, markRunOver, redialHub, unlinkedGroup } from '../../src/comm/hub.js';
import { RunOverError } from '../../src/comm/elastic.js';
import type { ProcessGroup } from '../../src/comm/process_group.js';
import { StoreClient } from '../../src/comm/store/client.js';
import { StoreServer } from '../../src/comm/store/server.js';
import { TimeoutError } from '../../src/util/errors.js';

const peers = { token: 'hub-test-token-0123456789', worldSize: 3, signature: 'hub', handshakeMs: 2000 };
let store: StoreServer;
let hubStore: StoreClient;
const clients: StoreClient[] = [];

async function client(rank: number): Promise<StoreClient> {
  const c = await StoreClient.connect({ ...peers, host: '127.0.0.1', port: store.port, rank, timeoutMs: 2000 });
  clients.push(c);
  return c;
}

/** A spoke (a fresh process's group) dialed into the hub. */
async function spoke(rank: number, s: StoreClient, deadlineMs = 3000): Promise<ProcessGroup> {
  const group = unlinkedGroup(rank, peers.worldSize, { timeoutMs: 2000 });
  await redialHub({ ...peers, rank, group, store: async () => s, storeName: 'the test store', deadlineMs });
  return group;
}

function arrivals(door: HubDoor): number[] {
  const seen: number[] = [];
  door.onArrival((r) => seen.push(r));
  return seen;
}

before(async () => {
  store = await StoreServer.start({ ...peers, host: '127.0.0.1', port: 0 });
  hubStore = await client(0);
});
after(async () => {
  for (const c of clients) c.close();
  await store.close();
});

describe('hub: spokes that come back, a hub that comes back', () => {
  it('re-admits a spoke that returns as a new process; both directions count from zero again', async () => {
    const hub = unlinkedGroup(0, 3, { timeoutMs: 2000 });
    const door = await HubDoor.open(peers, hub, hubStore, '127.0.0.1', '127.0.0.1');
    const seen = arrivals(door);
    const s1 = await client(1);
    const first = await spoke(1, s1);
    await first.send(Float32Array.of(1, 2), 0, { tag: 7 });
    assert.deepEqual([...(await hub.recv(new Float32Array(2), 1, { tag: 7 }))], [1, 2]);
    await hub.send(Float32Array.of(3), 1, { tag: 7 });
    await first.recv(new Float32Array(1), 0, { tag: 7 });
    // The first process dies; a new one of the same rank dials in and starts numbering at zero.
    (first.transport as unknown as { abort(): void }).abort();
    const second = await spoke(1, s1);
    await second.send(Float32Array.of(5, 6), 0, { tag: 7 });
    assert.deepEqual([...(await hub.recv(new Float32Array(2), 1, { tag: 7 }))], [5, 6]);
    await hub.send(Float32Array.of(9), 1, { tag: 7 });
    assert.deepEqual([...(await second.recv(new Float32Array(1), 0, { tag: 7 }))], [9]);
    assert.deepEqual(seen, [1, 1]);
    door.close();
    await hub.close();
    await second.close();
  });

  it('a spoke re-dials a hub restarted on a new port, and the deadline names the hub that never returns', async () => {
    const s2 = await client(2);
    let hub = unlinkedGroup(0, 3, { timeoutMs: 2000 });
    let door = await HubDoor.open(peers, hub, hubStore, '127.0.0.1', '127.0.0.1');
    const w = await spoke(2, s2);
    // The hub goes down; its door key still names the dead address.
    door.close();
    (hub.transport as unknown as { abort(): void }).abort();
    const dead = Buffer.from(await s2.get(DOOR_KEY)).toString();
    await assert.rejects(spoke(2, s2, 400), (e: Error) => e instanceof TimeoutError && e.message.includes(`the parameter server (rank 0) at ${dead}`) && /connection refused/.test(e.message));
    // A new hub opens a new door: the spoke's next redial reaches it.
    const redial = redialHub({ ...peers, rank: 2, group: w, store: async () => s2, storeName: 'the test store', deadlineMs: 5000 });
    hub = unlinkedGroup(0, 3, { timeoutMs: 2000 });
    door = await HubDoor.open(peers, hub, hubStore, '127.0.0.1', '127.0.0.1');
    await redial;
    await w.send(Float32Array.of(4), 0, { tag: 1 });
    assert.deepEqual([...(await hub.recv(new Float32Array(1), 2, { tag: 1 }))], [4]);
    // After the hub's last update, a spoke that comes back learns the run is over.
    await markRunOver(hubStore);
    await assert.rejects(spoke(2, s2, 2000), RunOverError);
    door.close();
    await hub.close();
    await w.close();
  });
});
