/**
 * What protecting the data plane would cost the all-reduce (issue 12 §5: offer a per-frame MAC or
 * TLS if it costs < 10% of all-reduce bandwidth).
 *
 *   npm run bench:frame-mac -- [--sizes 1M,4M,16M] [--iters 15] [--rounds 3] [--with mac,tcp,tls]
 *
 * Two ranks on 127.0.0.1 (forked copies of this file, meeting through a store hosted here)
 * all-reduce float32 buffers of each size through the plain group (the product's TCP transport),
 * and through:
 *   mac  the same transport wrapped in bench/lib/mac_transport.ts (HMAC-SHA256 of every message,
 *        checked before a receive completes);
 *   tls  the product's frames and transport over TLS 1.3 sockets, AES-128-GCM, a self-signed
 *        certificate made at bench time (bench/lib/tls_transport.ts);
 *   tcp  that same construction over plain sockets: what the socket read path alone costs.
 * Plain and the others alternate `rounds` times (interleaved, so load hits them alike); each keeps
 * its best median over the rounds (per-iteration max over ranks), and each round's cost against
 * the plain median of the same round gives the spread. Reported: times, busbw (nccl-tests: bytes /
 * time × 2(N-1)/N) and the cost as the fraction of plain bandwidth lost, the load average, and how
 * fast one core encrypts with AES-128-GCM on its own. The last line is JSON.
 */
import { fork } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessGroup } from '../src/comm/process_group.js';
import { tensorReducer } from '../src/train/boundary/reducer.js';
import { rendezvous } from '../src/comm/rendezvous.js';
import { StoreServer } from '../src/comm/store/server.js';
import { generateToken, TOKEN_ENV } from '../src/comm/token.js';
import { MacTransport } from './lib/mac_transport.js';
import { median } from './lib/stats.js';
import { benchTransport, selfSignedCert } from './lib/tls_transport.js';

const SELF = fileURLToPath(import.meta.url);
const WORLD = 2;

type Variant = 'mac' | 'tcp' | 'tls';
const VARIANTS: readonly Variant[] = ['mac', 'tcp', 'tls'];

/** Per size: every round's median (µs) of plain and of each variant. */
interface Row { bytes: number; plain: number[]; variants: Partial<Record<Variant, number[]>> }
interface Report { rows: Row[]; macsChecked: number; cipher: string }

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
  const c = await rendezvous({ rank, worldSize: WORLD, masterHost: '127.0.0.1', masterPort: Number(arg(argv, 'port', '0')), hostStore: false, timeoutMs: 30_000, group: { reducer: tensorReducer } });
  const wanted = arg(argv, 'with', VARIANTS.join(',')).split(',') as Variant[];
  const mac = new MacTransport(c.transport, Buffer.from(arg(argv, 'key', ''), 'hex'));
  const material = { cert: arg(argv, 'cert', ''), key: arg(argv, 'tlskey', '') };
  const groups = new Map<Variant, ProcessGroup>();
  let cipher = '';
  for (const v of wanted) {
    if (v === 'mac') groups.set(v, new ProcessGroup(mac, { reducer: tensorReducer }));
    else {
      const link = await benchTransport(c.store, rank, v, material);
      if (v === 'tls') cipher = link.cipher;
      groups.set(v, new ProcessGroup(link.transport, { reducer: tensorReducer }));
    }
  }
  await c.group.barrier();
  const iters = Number(arg(argv, 'iters', '15'));
  const rounds = Number(arg(argv, 'rounds', '3'));
  const rows: Row[] = [];
  for (const bytes of arg(argv, 'sizes', '1M,4M,16M').split(',').map(parseSize)) {
    const buf = new Float32Array(bytes >> 2).fill(1);
    const row: Row = { bytes, plain: [], variants: {} };
    // Ops never overlap, so plain and mac may share the transport's tags.
    for (let r = 0; r < rounds; r++) {
      row.plain.push(await timed(c.group, buf, iters));
      for (const [v, g] of groups) (row.variants[v] ??= []).push(await timed(g, buf, iters));
    }
    rows.push(row);
  }
  if (rank === 0) process.send!({ rows, macsChecked: mac.verified, cipher } satisfies Report);
  await c.group.barrier();
  for (const [v, g] of groups) if (v !== 'mac') await g.transport.close();
  await c.close();
}

/** GB/s one core encrypts with AES-128-GCM (best of 5 passes over 16 MiB): TLS's cipher alone. */
function aesGcmGBs(): number {
  const data = randomBytes(16 << 20);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const c = createCipheriv('aes-128-gcm', randomBytes(16), randomBytes(12));
    c.update(data);
    c.final();
    best = Math.min(best, performance.now() - t0);
  }
  return data.length / (best / 1000) / 1e9;
}

async function main(argv: string[]): Promise<void> {
  const token = generateToken();
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token, worldSize: WORLD, signature: '' });
  const pass = ['sizes', 'iters', 'rounds', 'with'].flatMap((k) => (argv.includes(`--${k}`) ? [`--${k}`, arg(argv, k, '')] : []));
  const key = randomBytes(32).toString('hex');
  const certDir = mkdtempSync(join(tmpdir(), 'smolcluster-tls-'));
  const tlsArgs = arg(argv, 'with', VARIANTS.join(',')).includes('tls') ? (() => {
    const m = selfSignedCert(certDir);
    return ['--cert', m.cert, '--tlskey', m.key];
  })() : [];
  const load = loadavg()[0];
  const kids = Array.from({ length: WORLD }, (_, r) => fork(SELF, [...pass, '--role', 'worker', '--rank', String(r), '--port', String(store.port), '--key', key, ...tlsArgs], { env: { ...process.env, [TOKEN_ENV]: token } }));
  try {
    const report = await new Promise<Report>((resolve, reject) => {
      kids[0].on('message', (m: Report) => resolve(m));
      for (const k of kids) k.on('exit', (code) => code && reject(new Error(`a worker exited with code ${code}`)));
    });
    await Promise.all(kids.map((k) => new Promise((r) => (k.exitCode !== null ? r(null) : k.on('exit', r)))));
    const bus = (bytes: number, us: number): number => (bytes / (us / 1e6)) * ((2 * (WORLD - 1)) / WORLD) / 1e9;
    const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;
    const loads = `load average ${load.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after`;
    const aes = aesGcmGBs();
    console.log(`2 ranks on 127.0.0.1, ${loads}; TLS: ${report.cipher || 'not run'}; AES-128-GCM on one core: ${aes.toFixed(2)} GB/s`);
    console.log('size    plain ms  busbw GB/s  variant      ms  busbw GB/s   bandwidth lost (each round)');
    const out = report.rows.flatMap((r) => {
      const plainUs = Math.min(...r.plain);
      return Object.entries(r.variants).map(([v, times]) => {
        const us = Math.min(...times);
        const lost = 1 - plainUs / us;
        const perRound = times.map((t, i) => 1 - r.plain[i] / t);
        console.log(`${String(r.bytes >> 10).padStart(6)}K ${(plainUs / 1000).toFixed(2).padStart(8)} ${bus(r.bytes, plainUs).toFixed(2).padStart(11)}  ${v.padEnd(4)} ${(us / 1000).toFixed(2).padStart(8)} ${bus(r.bytes, us).toFixed(2).padStart(11)}   ${pct(lost)} (${perRound.map(pct).join(', ')})`);
        return { bytes: r.bytes, variant: v, plain_us: plainUs, us, plain_busbw_gbs: bus(r.bytes, plainUs), busbw_gbs: bus(r.bytes, us), bandwidth_lost: lost, lost_per_round: perRound };
      });
    });
    console.log(JSON.stringify({ bench: 'frame-mac', world: WORLD, mac: 'hmac-sha256 per message', tls: report.cipher, aes_128_gcm_gbs: aes, macs_checked: report.macsChecked, load_before: load, load_after: loadavg()[0], rows: out }));
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill();
    await store.close();
    rmSync(certDir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (arg(argv, 'role', 'main') === 'worker') await worker(argv);
else await main(argv);
