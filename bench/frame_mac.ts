/**
 * What a per-frame MAC on the data plane would cost the all-reduce (issue 12 §5: offer one if it
 * costs < 10% of all-reduce bandwidth).
 *
 *   npm run bench:frame-mac -- [--sizes 1M,16M] [--iters 15] [--rounds 3]
 *
 * Two ranks on 127.0.0.1 (forked copies of this file, meeting through a store hosted here)
 * all-reduce float32 buffers of each size through the plain group, and through the same TCP
 * transport wrapped in bench/lib/mac_transport.ts (HMAC-SHA256 of every message, checked before a
 * receive completes). Plain and MAC alternate `rounds` times; each keeps its best median over the
 * rounds (per-iteration max over ranks). Reported: both times, busbw (nccl-tests: bytes / time ×
 * 2(N-1)/N) and the MAC's cost as the fraction of plain bandwidth lost. The last line is JSON.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ProcessGroup } from '../src/comm/process_group.js';
import { rendezvous } from '../src/comm/rendezvous.js';
import { StoreServer } from '../src/comm/store/server.js';
import { generateToken, TOKEN_ENV } from '../src/comm/token.js';
import { MacTransport } from './lib/mac_transport.js';
import { median } from './lib/stats.js';

const SELF = fileURLToPath(import.meta.url);
const WORLD = 2;

interface Row { bytes: number; plainUs: number; macUs: number; verified: number }

function arg(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}

function parseSize(s: string): number {
  const m = /^(\d+)([KM]?)$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (examples: 64K, 1M, 16M)`);
  return Number(m[1]) * (m[2].toUpperCase() === 'M' ? 1 << 20 : m[2].toUpperCase() === 'K' ? 1 << 10 : 1);
}

/** Median time (µs) of `iters` all-reduces, each the max over ranks. */
async function timed(group: ProcessGroup, buf: Float32Array, iters: number): Promise<number> {
  for (let i = 0; i < 3; i++) await group.allReduce(buf); // warm-up
  const times = new Float32Array(iters);
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await group.allReduce(buf);
    times[i] = (performance.now() - t0) * 1000;
  }
  await group.allReduce(times, { op: 'max' });
  return median([...times]);
}

async function worker(argv: string[]): Promise<void> {
  const rank = Number(arg(argv, 'rank', '0'));
  const c = await rendezvous({ rank, worldSize: WORLD, masterHost: '127.0.0.1', masterPort: Number(arg(argv, 'port', '0')), hostStore: false, timeoutMs: 30_000 });
  const mac = new MacTransport(c.transport, Buffer.from(arg(argv, 'key', ''), 'hex'));
  const macGroup = new ProcessGroup(mac);
  const iters = Number(arg(argv, 'iters', '15'));
  const rounds = Number(arg(argv, 'rounds', '3'));
  const rows: Row[] = [];
  for (const bytes of arg(argv, 'sizes', '1M,16M').split(',').map(parseSize)) {
    const buf = new Float32Array(bytes >> 2).fill(1);
    let plainUs = Infinity;
    let macUs = Infinity;
    // Ops never overlap, so the two groups may share the transport's tags.
    for (let r = 0; r < rounds; r++) {
      plainUs = Math.min(plainUs, await timed(c.group, buf, iters));
      macUs = Math.min(macUs, await timed(macGroup, buf, iters));
    }
    rows.push({ bytes, plainUs, macUs, verified: mac.verified });
  }
  if (rank === 0) process.send!({ rows });
  await c.group.barrier();
  await c.close();
}

async function main(argv: string[]): Promise<void> {
  const token = generateToken();
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token, worldSize: WORLD, signature: '' });
  const pass = ['sizes', 'iters', 'rounds'].flatMap((k) => (argv.includes(`--${k}`) ? [`--${k}`, arg(argv, k, '')] : []));
  const key = randomBytes(32).toString('hex');
  const kids = Array.from({ length: WORLD }, (_, r) => fork(SELF, [...pass, '--role', 'worker', '--rank', String(r), '--port', String(store.port), '--key', key], { env: { ...process.env, [TOKEN_ENV]: token } }));
  try {
    const rows = await new Promise<Row[]>((resolve, reject) => {
      kids[0].on('message', (m: { rows: Row[] }) => resolve(m.rows));
      for (const k of kids) k.on('exit', (code) => code && reject(new Error(`a worker exited with code ${code}`)));
    });
    await Promise.all(kids.map((k) => new Promise((r) => (k.exitCode !== null ? r(null) : k.on('exit', r)))));
    const bus = (bytes: number, us: number): number => (bytes / (us / 1e6)) * ((2 * (WORLD - 1)) / WORLD) / 1e9;
    console.log('size    plain ms  busbw GB/s   MAC ms  busbw GB/s   bandwidth lost to the MAC');
    const out = rows.map((r) => {
      const lost = 1 - r.plainUs / r.macUs;
      console.log(`${String(r.bytes >> 10).padStart(6)}K ${(r.plainUs / 1000).toFixed(2).padStart(8)} ${bus(r.bytes, r.plainUs).toFixed(2).padStart(11)} ${(r.macUs / 1000).toFixed(2).padStart(8)} ${bus(r.bytes, r.macUs).toFixed(2).padStart(11)}   ${(lost * 100).toFixed(0)}% (MACs checked: ${r.verified})`);
      return { bytes: r.bytes, plain_us: r.plainUs, mac_us: r.macUs, plain_busbw_gbs: bus(r.bytes, r.plainUs), mac_busbw_gbs: bus(r.bytes, r.macUs), bandwidth_lost: lost, macs_checked: r.verified };
    });
    console.log(JSON.stringify({ bench: 'frame-mac', world: WORLD, mac: 'hmac-sha256 per message', rows: out }));
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill();
    await store.close();
  }
}

const argv = process.argv.slice(2);
if (arg(argv, 'role', 'main') === 'worker') await worker(argv);
else await main(argv);
