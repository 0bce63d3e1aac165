import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { shmNative } from '../../../src/launch/shm_native.js';
import { shareMemory, SHM_ENV } from '../../../src/comm/shm/negotiate.js';
import { ShmTransport } from '../../../src/comm/shm/transport.js';
import { StoreServer } from '../../../src/comm/store/server.js';
import type { TcpTransport } from '../../../src/comm/tcp/transport.js';
import { TimeoutError } from '../../../src/util/errors.js';
import { bitsEqual, makeTcpTransports, rankData, TOKEN } from '../fixture.js';

const skip = shmNative() || process.env.CI === 'true' ? false : 'the native addon has no shared memory here (not Linux, or not built)';
const WORKER = fileURLToPath(new URL('./allreduce_worker.js', import.meta.url));
const FAULT_WORKER = fileURLToPath(new URL('./fault_worker.js', import.meta.url));

function ourSegments(): string[] {
  return readdirSync('/dev/shm').filter((f) => f.startsWith('smolcluster-'));
}

async function sharedWorld(n: number, timeoutMs = 10_000): Promise<{ groups: ProcessGroup[]; close(): Promise<void> }> {
  const tcp = (await makeTcpTransports(n, { timeoutMs })) as TcpTransport[];
  const transports = await Promise.all(tcp.map((t) => shareMemory(t, { timeoutMs, ringBytes: 1 << 16, native: shmNative() })));
  return { groups: transports.map((t) => new ProcessGroup(t, { timeoutMs })), close: async () => void (await Promise.all(transports.map((t) => t.close()))) };
}

test('ranks on one host negotiate shared memory, all-reduce through it (messages larger than a ring too), and leave nothing in /dev/shm', { skip }, async () => {
  const before = ourSegments();
  const world = await sharedWorld(3);
  try {
    assert.deepEqual(ourSegments().filter((f) => !before.includes(f)), [], 'segments are unlinked once mapped');
    for (const [r, pg] of world.groups.entries()) {
      assert.ok(pg.transport instanceof ShmTransport);
      assert.deepEqual(pg.transport.sharedPeers, [0, 1, 2].filter((p) => p !== r));
    }
    for (const length of [1, 1001, 100_000]) {
      for (const algorithm of ['ring', 'direct', 'doubling'] as const) {
        const inputs = [0, 1, 2].map((r) => rankData(r, length));
        const out = await Promise.all(world.groups.map((pg, r) => pg.allReduce(inputs[r].slice(), { algorithm })));
        for (let i = 0; i < length; i += 97) assert.equal(out[0][i], inputs[0][i] + inputs[1][i] + inputs[2][i]);
        for (const o of out) assert.ok(bitsEqual(o, out[0]));
      }
    }
    const sent = world.groups[0].bytesSent;
    assert.ok(sent > 100_000 * 4, `bytes through shared memory are counted (${sent})`);
  } finally {
    await world.close();
  }
});

test('a recv from a rank that never writes times out naming that rank', { skip }, async () => {
  const world = await sharedWorld(2, 300);
  try {
    const late = world.groups[0].recv(new Float32Array(4), 1, { timeoutMs: 300 });
    await assert.rejects(late, (err: unknown) => err instanceof TimeoutError && err.ranks.length === 1 && err.ranks[0] === 1 && /waiting for rank 1/.test(err.message));
    // The link still works afterwards.
    const [got] = await Promise.all([world.groups[1].recv(new Float32Array(2), 0), world.groups[0].send(new Float32Array([1, 2]), 1)]);
    assert.deepEqual([...got], [1, 2]);
  } finally {
    await world.close();
  }
});

test(`${SHM_ENV}=0 keeps every rank on TCP`, { skip }, async () => {
  process.env[SHM_ENV] = '0';
  try {
    const tcp = (await makeTcpTransports(2)) as TcpTransport[];
    const transports = await Promise.all(tcp.map((t) => shareMemory(t, { timeoutMs: 5000, native: shmNative() })));
    assert.ok(transports.every((t, r) => t === tcp[r]));
    await Promise.all(tcp.map((t) => t.close()));
  } finally {
    delete process.env[SHM_ENV];
  }
});

interface Report {
  hashes: string[];
  shared: number[];
}

async function runWorld(n: number, shm: 'on' | 'off'): Promise<Report[]> {
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN, worldSize: n, signature: '' });
  const kids = Array.from({ length: n }, (_, r) => fork(WORKER, [String(store.port), String(r), String(n), shm], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    const reports = await Promise.all(kids.map((k, r) => new Promise<Report>((resolve, reject) => {
      k.once('message', (m) => resolve(m as Report));
      k.once('exit', (code) => reject(new Error(`rank ${r} exited with code ${code} before reporting`)));
    })));
    await Promise.all(kids.map((k) => new Promise((r) => (k.exitCode !== null ? r(null) : k.once('exit', r)))));
    return reports;
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill();
    await store.close();
  }
}

test('real processes: all-reduce over shared memory gives the same bits as over TCP, every algorithm', { skip, timeout: 60_000 }, async () => {
  const before = ourSegments();
  const viaShm = await runWorld(3, 'on');
  const viaTcp = await runWorld(3, 'off');
  assert.deepEqual(viaShm.map((r) => r.shared), [[1, 2], [0, 2], [0, 1]], 'every pair used shared memory');
  assert.deepEqual(viaTcp.map((r) => r.shared), [[], [], []]);
  for (let r = 0; r < 3; r++) {
    assert.deepEqual(viaShm[r].hashes, viaShm[0].hashes, `rank ${r} ends with rank 0's bits`);
    assert.deepEqual(viaShm[r].hashes, viaTcp[r].hashes, `rank ${r}: shared memory and TCP agree bit for bit`);
  }
  // Only what this test made: a dead process's segments from before may be swept meanwhile (sweep.ts).
  assert.deepEqual(ourSegments().filter((f) => !before.includes(f)), [], 'nothing left in /dev/shm');
});

test('a recv can take the payload in pieces straight from the ring (posted first, or after the message was queued)', { skip }, async () => {
  const world = await sharedWorld(2);
  try {
    const [a, b] = world.groups.map((pg) => pg.transport);
    assert.equal(b.consumesPiecesFrom?.(0), true);
    const payload = new Uint8Array(200_000).map((_, i) => (i * 7) & 255); // three ring lengths (64 KiB)
    const collect = (): { consume: { bytes: number; piece(bytes: Uint8Array, offset: number): void }; got: Uint8Array; pieces: number[] } => {
      const got = new Uint8Array(payload.length);
      const pieces: number[] = [];
      return { got, pieces, consume: { bytes: payload.length, piece: (bytes, offset) => void (got.set(bytes, offset), pieces.push(offset)) } };
    };
    const first = collect();
    const posted = b.recv(0, 5, { consume: first.consume });
    await a.send(1, 5, payload);
    assert.equal((await posted).length, 0);
    assert.deepEqual(first.got, payload);
    assert.ok(first.pieces.length >= 3, `streamed in ${first.pieces.length} pieces`);
    const late = collect();
    await a.send(1, 6, payload);
    await new Promise((r) => setTimeout(r, 50)); // it lands in a buffer of its own meanwhile
    await b.recv(0, 6, { consume: late.consume });
    assert.deepEqual(late.got, payload);
    await assert.rejects(Promise.all([b.recv(0, 7, { consume: { bytes: 8, piece: () => {} } }), a.send(1, 7, new Uint8Array(4))]), /size mismatch/);
  } finally {
    await world.close();
  }
});

/** Two real processes (one transport each, so the pump waits in busy mode); rank 1 fails as `mode` says; rank 0's report. */
async function faultWorld(mode: 'crash' | 'hang'): Promise<{ error: string; message: string; ranks: number[]; ms: number }> {
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN, worldSize: 2, signature: '' });
  const kids = [0, 1].map((r) => fork(FAULT_WORKER, [String(store.port), String(r), mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    return await new Promise((resolve, reject) => {
      kids[0].once('message', (m) => resolve(m as { error: string; message: string; ranks: number[]; ms: number }));
      kids[0].once('exit', (code) => reject(new Error(`rank 0 exited with code ${code} before reporting`)));
    });
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
    await store.close();
  }
}

test('real processes: a peer killed mid-run fails the all-reduce of the other rank naming it, at once', { skip, timeout: 30_000 }, async () => {
  const r = await faultWorld('crash');
  assert.equal(r.error, 'PeerError', r.message);
  assert.deepEqual(r.ranks, [1]);
  assert.ok(r.ms < 1500, `failed after ${r.ms.toFixed(0)} ms, before the 1.5 s deadline`);
});

test('real processes: a peer that stops taking part times out the all-reduce of the other rank naming it', { skip, timeout: 30_000 }, async () => {
  const r = await faultWorld('hang');
  assert.equal(r.error, 'TimeoutError', r.message);
  assert.deepEqual(r.ranks, [1]);
  assert.match(r.message, /rank 1/);
  assert.ok(r.ms >= 1400 && r.ms < 10_000, `timed out after ${r.ms.toFixed(0)} ms (deadline 1.5 s)`);
});
