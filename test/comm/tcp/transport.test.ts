import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { MeshListener } from '../../../src/comm/tcp/mesh.js';
import type { TcpTransport } from '../../../src/comm/tcp/transport.js';
import { PeerError, TimeoutError } from '../../../src/util/errors.js';
import { logLines, makeTcpTransports, rankData, TOKEN } from '../fixture.js';

async function mesh(n: number): Promise<TcpTransport[]> {
  return (await makeTcpTransports(n)) as TcpTransport[];
}

test('out-of-order tags and zero-copy receive into a posted buffer', async () => {
  const [a, b] = await mesh(2);
  try {
    const big = new Uint8Array(1 << 20).map((_, i) => i & 255);
    const into = new Uint8Array(1 << 20);
    const posted = b.recv(0, 2, { into });
    await a.send(1, 1, new Uint8Array([1, 2, 3]));
    await a.send(1, 2, big);
    assert.equal(await posted, into);
    assert.deepEqual(into, big);
    assert.deepEqual(await b.recv(0, 1), new Uint8Array([1, 2, 3]));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a peer that dies fails pending and later ops at once, naming its rank and host', async () => {
  const ts = await mesh(3);
  const lost: Array<[number, string]> = [];
  ts[0].on('peerLost', (rank: number, err: PeerError) => lost.push([rank, err.message]));
  const pg = new ProcessGroup(ts[0], { timeoutMs: 20_000 });
  const pending = pg.allReduce(new Float32Array(1000));
  const t0 = Date.now();
  ts[2].abort();
  await assert.rejects(pending, (e: Error) => e instanceof PeerError && e.rank === 2 && /rank 2 \(127\.0\.0\.1:\d+\): connection lost/.test(e.message));
  assert.ok(Date.now() - t0 < 2000, 'promptly, not at the timeout');
  await assert.rejects(ts[0].send(2, 1, new Uint8Array(1)), PeerError);
  await assert.rejects(ts[0].recv(2, 1), PeerError);
  assert.equal(lost.length, 1);
  assert.equal(lost[0][0], 2);
  await Promise.all([ts[0].close(), ts[1].close()]);
});

test('a peer that hangs makes ops time out naming it', async () => {
  const ts = await mesh(3);
  try {
    const groups = ts.map((t) => new ProcessGroup(t, { timeoutMs: 300 }));
    // Rank 2 never calls: rank 1 (its right neighbour) waits on it; rank 0 waits on rank 2 or 1.
    const results = await Promise.allSettled([groups[0].allReduce(new Float32Array(100_000)), groups[1].allReduce(new Float32Array(100_000))]);
    const r1 = results[1] as PromiseRejectedResult;
    assert.ok(r1.reason instanceof TimeoutError);
    assert.match(r1.reason.message, /^allreduce timed out after 300 ms waiting for rank 0$|^allreduce timed out after 300 ms waiting for rank 2$/);
    assert.equal(results[0].status, 'rejected');
  } finally {
    await Promise.all(ts.map((t) => t.close()));
  }
});

test('a send to a peer that stops reading times out naming it', async () => {
  const [a, b] = await mesh(2);
  try {
    // Rank 1 stops reading the connection rank 0 sends on; 64 MB cannot fit in the socket buffers.
    (b as unknown as { links: Array<{ inbound: { socket: net.Socket } }> }).links[0].inbound.socket.pause();
    await assert.rejects(a.send(1, 1, new Uint8Array(64 << 20), { timeoutMs: 300, op: 'allreduce' }), /^TimeoutError: allreduce timed out after 300 ms waiting for rank 1 \(it is not reading\)$/);
  } finally {
    a.abort();
    b.abort();
  }
});

test('a clean close is quiet: later ops fail with "left the group", no peerLost', async () => {
  const [a, b] = await mesh(2);
  let lost = 0;
  a.on('peerLost', () => lost++);
  const pending = assert.rejects(a.recv(1, 3, { timeoutMs: 5000 }), /rank 1 \(127\.0\.0\.1:\d+\): left the group/);
  await b.close();
  await pending;
  assert.equal(lost, 0);
  await a.close();
});

test('garbage on a data connection drops that peer only, with a log line', async () => {
  const ts = await mesh(3);
  try {
    const lost: number[] = [];
    ts[0].on('peerLost', (r: number) => lost.push(r));
    // Rank 1 writes garbage on its send connection to rank 0.
    const link = (ts[1] as unknown as { links: Array<{ outbound: { socket: net.Socket } }> }).links[0];
    link.outbound.socket.write(Buffer.from('this is not a frame, not at all'));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(lost, [1]);
    assert.ok(logLines.some((l) => /dropping connection from rank 1 .*bad frame magic/.test(l.message)));
    // Ranks 0 and 2 still talk.
    await ts[2].send(0, 5, new Uint8Array([9]));
    assert.deepEqual(await ts[0].recv(2, 5), new Uint8Array([9]));
  } finally {
    await Promise.all(ts.map((t) => t.close()));
  }
});

test('a stranger or garbage at the data listener is dropped and the mesh still forms', async () => {
  const cfg = (rank: number) => ({ rank, size: 2, token: TOKEN, signature: 's', timeoutMs: 5000 });
  const l0 = await MeshListener.open(cfg(0), '127.0.0.1');
  const l1 = await MeshListener.open(cfg(1), '127.0.0.1');
  const junk = net.connect(l0.port, '127.0.0.1', () => junk.write(Buffer.alloc(64, 0x41)));
  junk.resume();
  await new Promise((r) => junk.once('close', r));
  const addresses = [`127.0.0.1:${l0.port}`, `127.0.0.1:${l1.port}`];
  const [t0, t1] = await Promise.all([l0.connect(addresses), l1.connect(addresses)]);
  const pgs = [new ProcessGroup(t0), new ProcessGroup(t1)];
  const out = await Promise.all(pgs.map((pg, r) => pg.allReduce(rankData(r, 10))));
  assert.deepEqual(out[0], out[1]);
  await Promise.all([t0.close(), t1.close()]);
});

test('mesh building times out naming the rank that never dialed', async () => {
  const cfg = (rank: number) => ({ rank, size: 3, token: TOKEN, signature: 's', timeoutMs: 1500 });
  const ls = await Promise.all([0, 1, 2].map((r) => MeshListener.open(cfg(r), '127.0.0.1')));
  const addresses = ls.map((l) => `127.0.0.1:${l.port}`);
  const results = await Promise.allSettled([ls[0].connect(addresses), ls[1].connect(addresses)]);
  ls[2].close();
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    // Both ranks share one deadline: the one that gives up first closes its sockets, so the other
    // may name it too by then. Rank 2, which never dialed, must be named either way.
    assert.match((r as PromiseRejectedResult).reason.message, /connect timed out after \d+ ms waiting for ranks? (?:[01], )*2\b/);
  }
});
