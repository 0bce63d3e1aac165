import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { Connection } from '../../src/comm/tcp/connection.js';
import { canonicalHost, NodeRegistry } from '../../src/cluster/registry.js';

/** What the registry uses of a connection: 'closed' events, isOpen, destroy. */
function fakeConnection(): Connection {
  const c = new EventEmitter() as EventEmitter & { isOpen: boolean; destroy(): void };
  c.isOpen = true;
  c.destroy = () => {
    c.isOpen = false;
    c.emit('closed', null);
  };
  return c as unknown as Connection;
}

test('localhost, ::1 and IPv4-mapped addresses name the same node as 127.0.0.1', () => {
  for (const h of ['localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1', ' 127.0.0.1 ']) assert.equal(canonicalHost(h), '127.0.0.1', h);
  assert.equal(canonicalHost('::ffff:10.0.0.7'), '10.0.0.7');
  assert.equal(canonicalHost('127.0.0.2'), '127.0.0.2', 'another loopback address is another place');
  assert.equal(canonicalHost('fe80::1'), 'fe80::1');

  const joined: string[] = [];
  const reg = new NodeRegistry(1000, { joined: (n) => joined.push(n.id), died: () => {}, stateChanged: () => {} });
  const listed = reg.ensureListed('localhost', 9091);
  const registered = reg.attach('127.0.0.1', 9091, fakeConnection(), 'registered', 'registered');
  assert.equal(registered, listed, 'one entry for the listed and the registering node');
  assert.equal(registered.id, '127.0.0.1:9091');
  reg.attach('::ffff:127.0.0.1', 9091, fakeConnection(), 'dialed', 'file');
  assert.equal(reg.all.length, 1);
  assert.equal(reg.liveCount, 1);
  assert.deepEqual(joined, ['127.0.0.1:9091']);
  reg.attach('127.0.0.1', 9092, fakeConnection(), 'registered', 'registered');
  assert.equal(reg.liveCount, 2, 'another port is another node');
});
