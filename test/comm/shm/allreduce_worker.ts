/**
 * One rank of the real-process shared-memory tests (transport.test.ts): meets the others through the
 * test's store, all-reduces deterministic floats of a few sizes (one larger than a ring, so it
 * streams) with each algorithm, and reports a hash of every result and which peers it reached through
 * shared memory.
 *   node allreduce_worker.js <storePort> <rank> <world> <shm: on|off>
 */
import { createHash } from 'node:crypto';
import { rendezvous } from '../../../src/comm/rendezvous.js';
import { shmNative } from '../../../src/launch/shm_native.js';
import { ShmTransport } from '../../../src/comm/shm/transport.js';
import { rankData, TOKEN } from '../fixture.js';

const [port, rank, world] = process.argv.slice(2, 5).map(Number);
const sharedMemory = process.argv[5] === 'on' ? shmNative() : null;
const c = await rendezvous({ rank, worldSize: world, masterHost: '127.0.0.1', masterPort: port, hostStore: false, token: TOKEN, timeoutMs: 20_000, sharedMemory, group: { timeoutMs: 20_000 } });
const hashes: string[] = [];
for (const length of [1001, 300_000, 1_500_000]) {
  for (const algorithm of ['ring', 'direct', 'doubling', 'auto'] as const) {
    if (length > 300_000 && algorithm !== 'ring') continue;
    const out = await c.group.allReduce(rankData(rank, length, 'float'), { algorithm });
    hashes.push(`${length}/${algorithm}:${createHash('sha256').update(out).digest('hex')}`);
  }
}
const shared = c.group.transport instanceof ShmTransport ? c.group.transport.sharedPeers : [];
process.send!({ hashes, shared, bytesSent: c.group.bytesSent });
await c.group.barrier();
await c.close();
