import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { rendezvous, type RendezvousOptions } from '../../src/comm/rendezvous.js';
import { StoreClient } from '../../src/comm/store/client.js';
import { StoreServer } from '../../src/comm/store/server.js';
import { PeerError, SmolError, TimeoutError } from '../../src/util/errors.js';
import { rankData, TOKEN } from './fixture.js';
import { signatureWithSettings } from '../../src/comm/tcp/signature_settings.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const base = (port: number, rank: number, n: number): RendezvousOptions => ({ rank, worldSize: n, masterHost: '127.0.0.1', masterPort: port, token: TOKEN, signature: 'mlp', timeoutMs: 5000 });

test('rank 0 hosts the store; three ranks meet and all-reduce', async () => {
  const port = await freePort();
  const clusters = await Promise.all([0, 1, 2].map((r) => rendezvous(base(port, r, 3))));
  try {
    assert.deepEqual(clusters.map((c) => c.rank), [0, 1, 2]);
    assert.ok(clusters[0].storeServer && !clusters[1].storeServer);
    const out = await Promise.all(clusters.map((c) => c.group.allReduce(rankData(c.rank, 5000), { op: 'avg' })));
    assert.deepEqual(out[1], out[0]);
    assert.equal(await clusters[2].store.add('smolcluster/shared/after', 1), 1);
  } finally {
    await Promise.all(clusters.map((c) => c.close()));
  }
});

test('a launcher hosts the store and assigns ranks to workers that ask for one', async () => {
  const server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN, worldSize: 2, signature: 'mlp' });
  const clusters = await Promise.all([0, 1].map(() => rendezvous({ ...base(server.port, -1, 2), hostStore: false })));
  try {
    assert.deepEqual(clusters.map((c) => c.rank).sort(), [0, 1]);
    await Promise.all(clusters.map((c) => c.group.barrier()));
  } finally {
    await Promise.all(clusters.map((c) => c.close()));
    await server.close();
  }
});

test('start-up names the ranks that never arrived', async () => {
  const port = await freePort();
  const results = await Promise.allSettled([0, 1].map((r) => rendezvous({ ...base(port, r, 4), timeoutMs: 1000 })));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    const err = (r as PromiseRejectedResult).reason;
    assert.ok(err instanceof TimeoutError, String(err));
    assert.deepEqual(err.ranks, [2, 3]);
    assert.match(err.message, /^rendezvous timed out after \d+ ms waiting for ranks 2, 3 \(they never registered with the master\)$/);
  }
});

test('port in use: one clear line', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    await assert.rejects(rendezvous(base(port, 0, 2)), (e: Error) => e instanceof SmolError && e.code === 'ADDRESS_IN_USE' && e.message === `cannot listen on 127.0.0.1:${port}: port ${port} is already in use (another run still going? pick another port)`);
  } finally {
    blocker.close();
  }
});

test('unreachable master: one clear line naming it', async () => {
  const port = await freePort();
  const t0 = Date.now();
  await assert.rejects(StoreClient.connect({ host: '127.0.0.1', port, token: TOKEN, worldSize: 2, signature: '', rank: 1, timeoutMs: 300 }), (e: Error) => e instanceof PeerError && new RegExp(`^127\\.0\\.0\\.1:${port}: cannot reach the master \\(rendezvous store\\) after \\d+ ms \\(connection refused\\)$`).test(e.message));
  assert.ok(Date.now() - t0 < 2000);
});

test('a worker refused for its token or settings ends rank 0\'s wait at once, naming what differs (issue 33 §3)', async () => {
  const port = await freePort();
  const settings = (lr: string): string => signatureWithSettings('mlp abc', { '--lr': lr, '--hidden': '128' });
  const zero = rendezvous({ ...base(port, 0, 2), signature: settings('0.1'), timeoutMs: 30_000 });
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 100));
  const one = rendezvous({ ...base(port, 1, 2), signature: settings('0.2'), timeoutMs: 30_000 });
  await assert.rejects(one, /model signature mismatch: --lr: the store has 0\.1, rank 1 has 0\.2$/);
  await assert.rejects(zero, (e: Error) => e instanceof SmolError && e.code === 'REFUSED' &&
    /^stopped while waiting for rank 1: rank 1 \(127\.0\.0\.1:\d+\): model signature mismatch: --lr: the store has 0\.1, rank 1 has 0\.2$/.test(e.message));
  assert.ok(Date.now() - t0 < 5000, `rank 0 waited ${Date.now() - t0} ms of its 30 s`);

  const port2 = await freePort();
  const zero2 = rendezvous({ ...base(port2, 0, 2), timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(rendezvous({ ...base(port2, 1, 2), token: `${TOKEN}-other`, timeoutMs: 30_000 }), /different cluster tokens/);
  await assert.rejects(zero2, /stopped while waiting for rank 1: .*different cluster tokens/);
});
