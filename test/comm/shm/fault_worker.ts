/**
 * One rank of the shared-memory fault tests (transport.test.ts): both ranks all-reduce once over
 * shared memory (so the pump is in its busy mode), then rank 1 fails as told — `crash`: SIGKILL
 * itself; `hang`: stop taking part but stay alive — while rank 0 all-reduces again and reports how
 * that ended (error name, message, the ranks it names, milliseconds).
 *   node fault_worker.js <storePort> <rank> <crash|hang>
 */
import { rendezvous } from '../../../src/comm/rendezvous.js';
import { shmNative } from '../../../src/launch/shm_native.js';
import { ShmTransport } from '../../../src/comm/shm/transport.js';
import { PeerError, TimeoutError } from '../../../src/util/errors.js';
import { TOKEN } from '../fixture.js';

const port = Number(process.argv[2]);
const rank = Number(process.argv[3]);
const mode = process.argv[4];
const c = await rendezvous({ rank, worldSize: 2, masterHost: '127.0.0.1', masterPort: port, hostStore: false, token: TOKEN, timeoutMs: 20_000, sharedMemory: shmNative(), group: { timeoutMs: 1500 } });
if (!(c.group.transport instanceof ShmTransport)) throw new Error('expected a shared-memory transport');
await c.group.allReduce(new Float32Array(300_000).fill(1));
if (rank === 1) {
  if (mode === 'crash') process.kill(process.pid, 'SIGKILL');
  setInterval(() => {}, 1000); // hang: alive, silent
} else {
  const t0 = performance.now();
  let report: Record<string, unknown> = { error: 'none' };
  try {
    await c.group.allReduce(new Float32Array(300_000).fill(1));
  } catch (err) {
    const ranks = err instanceof TimeoutError ? err.ranks : err instanceof PeerError ? [err.rank] : [];
    report = { error: (err as Error).constructor.name, message: (err as Error).message, ranks };
  }
  process.send!({ ...report, ms: performance.now() - t0 });
  process.exit(0);
}
