import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInProcessTransports } from '../../src/comm/inproc.js';
import { PeerError } from '../../src/util/errors.js';

test('messages with different tags may be received in any order; same tag is FIFO', async () => {
  const [a, b] = createInProcessTransports(2);
  await a.send(1, 10, new Uint8Array([1]));
  await a.send(1, 20, new Uint8Array([2]));
  await a.send(1, 20, new Uint8Array([3]));
  assert.deepEqual(await b.recv(0, 20), new Uint8Array([2]));
  assert.deepEqual(await b.recv(0, 10), new Uint8Array([1]));
  const into = new Uint8Array(1);
  assert.equal(await b.recv(0, 20, { into }), into);
  assert.deepEqual(into, new Uint8Array([3]));
});

test('the sender may reuse its buffer as soon as send resolves', async () => {
  const [a, b] = createInProcessTransports(2);
  const buf = new Uint8Array([7, 7]);
  await a.send(1, 1, buf);
  buf.fill(0);
  assert.deepEqual(await b.recv(0, 1), new Uint8Array([7, 7]));
});

test('a killed peer fails pending and later ops at once, with a PeerError and a peerLost event', async () => {
  const [a, b, c] = createInProcessTransports(3);
  const lost: number[] = [];
  a.on('peerLost', (rank: number) => lost.push(rank));
  const pending = a.recv(2, 5, { timeoutMs: 10_000 });
  const t0 = Date.now();
  c.kill();
  await assert.rejects(pending, (e: Error) => e instanceof PeerError && e.rank === 2 && /connection lost/.test(e.message));
  assert.ok(Date.now() - t0 < 1000);
  await assert.rejects(a.send(2, 1, new Uint8Array(1)), PeerError);
  await assert.rejects(a.recv(2, 6), PeerError);
  assert.deepEqual(lost, [2]);
  // Other peers are unaffected.
  await b.send(0, 9, new Uint8Array([4]));
  assert.deepEqual(await a.recv(1, 9), new Uint8Array([4]));
});

test('a size mismatch between message and receive buffer is an error, not corruption', async () => {
  const [a, b] = createInProcessTransports(2);
  await a.send(1, 1, new Uint8Array(3));
  await assert.rejects(b.recv(0, 1, { into: new Uint8Array(4) }), /size mismatch/);
});
