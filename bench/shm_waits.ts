/**
 * Interleaved A/B/C of the shared-memory pump's ways to wait while a message is due
 * (src/comm/shm/transport.ts `tuning`): parked on the libuv pool, asleep on the event-loop thread, or
 * spinning there first for as long as that pays (comm/shm/spin.ts).
 *
 *   node dist/bench/shm_waits.js [--workers 2] [--sizes 4K,64K,1M,16M,64M] [--iters 100] [--block 20] [--settle 20]
 *
 * N ranks over shared memory on 127.0.0.1; for every size the modes take turns in blocks of `block`
 * timed all-reduces (after `settle` untimed ones in the mode; the order rotates every round), so all
 * modes share the machine's load windows. Per mode: the median (p25-p75) of the per-iteration maximum
 * over ranks. Run it under the bench lock like every bench.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rendezvous } from '../src/comm/rendezvous.js';
import { ShmTransport } from '../src/comm/shm/transport.js';
import { StoreServer } from '../src/comm/store/server.js';
import { generateToken, TOKEN_ENV } from '../src/comm/token.js';
import { tensorReducer } from '../src/train/boundary/reducer.js';
import { shmNative } from '../src/launch/shm_native.js';

const SELF = fileURLToPath(import.meta.url);
const MODES = [
  { name: 'parked on the pool', busyWaits: false, spins: false },
  { name: 'slept on the event loop', busyWaits: true, spins: false },
  { name: 'spun, then slept', busyWaits: true, spins: true },
];

function flag(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (examples: 4K, 1M, 64M)`);
  return Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
}

const world = Number(flag('workers', '2'));
const sizes = flag('sizes', '4K,64K,1M,16M,64M').split(',').map(parseSize);
const iters = Number(flag('iters', '100'));
const block = Number(flag('block', '20'));
const settle = Number(flag('settle', '20'));

async function worker(port: number, rank: number): Promise<void> {
  const c = await rendezvous({ rank, worldSize: world, masterHost: '127.0.0.1', masterPort: port, hostStore: false, timeoutMs: 30_000, sharedMemory: shmNative(), group: { reducer: tensorReducer } });
  const t = c.group.transport;
  if (!(t instanceof ShmTransport)) throw new Error('shared memory unavailable: nothing to compare');
  const out: number[][][] = [];
  for (const bytes of sizes) {
    const buf = new Float32Array(bytes >> 2).fill(1);
    for (let i = 0; i < 10; i++) await c.group.allReduce(buf);
    const times = new Float32Array(iters * MODES.length);
    // Blocks of `block` timed all-reduces per mode, the modes' order rotating every round: a mode that
    // adapts (the spin budget) reaches its steady state within a block, and every mode sees the same windows.
    for (let done = 0, round = 0; done < iters; done += block, round++) {
      const n = Math.min(block, iters - done);
      for (let k = 0; k < MODES.length; k++) {
        const m = (k + round) % MODES.length;
        t.tuning.busyWaits = MODES[m].busyWaits;
        t.tuning.spins = MODES[m].spins;
        for (let i = 0; i < settle; i++) await c.group.allReduce(buf);
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          await c.group.allReduce(buf);
          times[m * iters + done + i] = (performance.now() - t0) * 1000;
        }
      }
    }
    await c.group.allReduce(times, { op: 'max' });
    out.push(MODES.map((_, m) => [...times.subarray(m * iters, (m + 1) * iters)].sort((a, b) => a - b)));
  }
  if (rank === 0) process.send!(out);
  await c.group.barrier();
  await c.close();
}

async function main(): Promise<void> {
  const token = generateToken();
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token, worldSize: world, signature: '' });
  const args = process.argv.slice(2);
  const kids = Array.from({ length: world }, (_, r) => fork(SELF, [...args, '--role', 'worker', '--port', String(store.port), '--rank', String(r)], { env: { ...process.env, [TOKEN_ENV]: token } }));
  try {
    const out = await new Promise<number[][][]>((resolve, reject) => {
      kids[0].once('message', (m) => resolve(m as number[][][]));
      for (const k of kids) k.once('exit', (code) => code && reject(new Error(`a worker exited with code ${code}`)));
    });
    console.log(`shared-memory pump waits, ${world} ranks, ${iters} iterations per mode in blocks of ${block}: median (p25-p75) us`);
    sizes.forEach((bytes, i) => {
      const cols = out[i].map((s, m) => `${MODES[m].name}: ${s[s.length >> 1].toFixed(0)} (${s[s.length >> 2].toFixed(0)}-${s[(3 * s.length) >> 2].toFixed(0)})`);
      console.log(`${String(bytes).padStart(9)}  ${cols.join('   ')}`);
    });
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill();
    await store.close();
  }
}

if (flag('role', 'main') === 'worker') await worker(Number(flag('port', '0')), Number(flag('rank', '0')));
else await main();
