/**
 * All-reduce benchmark on 127.0.0.1, against raw Node TCP and torch.distributed (Gloo).
 *
 *   npm run bench:allreduce -- --workers 2,4 --sizes 4K,64K,1M,16M,64M [--iters 20] [--warmup 5] [--no-gloo]
 *                              [--repeat R] [--algorithm auto|ring|direct|doubling] [--chunk 1M] [--direct-max 64K] [--doubling-max 64K] [--shm on|off|both]
 *
 * For each world size N it forks N copies of this file (--role worker), which meet through a store
 * hosted here (the launcher) and all-reduce float32 buffers of each size. Each iteration is timed on
 * every rank; we take the per-iteration maximum over ranks and report the median, over at least --iters
 * iterations and at least 100 ms of them (at most 2000; Gloo's script times the same way). As in nccl-tests:
 * algbw = bytes / time, busbw = algbw * 2 (N-1) / N; "/rawTCP" is busbw over the raw TCP stream's
 * one-way rate measured at the start of the same run (issue 13's "% of raw TCP"). With --repeat R (for a busy machine), ours and
 * Gloo run alternately R times and each keeps its best median per size. With --shm on (default) ranks
 * exchange data through shared memory (comm/shm/), --shm off over TCP, --shm both runs both. Raw
 * references in the same run: one-way Node TCP over loopback and one shared-memory ring between two
 * processes. The last line of output is one JSON object.
 */
import { fork, spawnSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CHUNK_BYTES, type AllReduceAlgorithm } from '../src/comm/process_group.js';
import { rendezvous } from '../src/comm/rendezvous.js';
import { DEFAULT_RING_BYTES } from '../src/comm/shm/negotiate.js';
import { shmNative } from '../src/launch/shm_native.js';
import { Inbox, inboxBytes } from '../src/comm/shm/ring.js';
import { StoreServer } from '../src/comm/store/server.js';
import { generateToken, TOKEN_ENV } from '../src/comm/token.js';
import { tensorReducer } from '../src/train/boundary/reducer.js';

const SELF = fileURLToPath(import.meta.url);
const GLOO_SCRIPT = path.resolve(path.dirname(SELF), '../../bench/reference/allreduce_gloo.py');

interface Args {
  role: string;
  workers: number[];
  sizes: number[];
  iters: number;
  warmup: number;
  gloo: boolean;
  repeat: number;
  rank: number;
  port: number;
  algorithm: AllReduceAlgorithm;
  chunkBytes: number;
  directMaxBytes: number | undefined;
  doublingMaxBytes: number | undefined;
  shm: 'on' | 'off' | 'both';
}

interface Row {
  bytes: number;
  medianUs: number;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string, dflt: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
  };
  return {
    role: get('role', 'main'),
    workers: get('workers', '2').split(',').map(Number),
    sizes: get('sizes', '4K,64K,1M,16M,64M').split(',').map(parseSize),
    iters: Number(get('iters', '20')),
    warmup: Number(get('warmup', '5')),
    gloo: !argv.includes('--no-gloo'),
    repeat: Math.max(1, Number(get('repeat', '1'))),
    rank: Number(get('rank', '0')),
    port: Number(get('port', '0')),
    algorithm: get('algorithm', 'auto') as AllReduceAlgorithm,
    chunkBytes: parseSize(get('chunk', String(DEFAULT_CHUNK_BYTES))),
    directMaxBytes: argv.includes('--direct-max') ? parseSize(get('direct-max', '0')) : undefined,
    doublingMaxBytes: argv.includes('--doubling-max') ? parseSize(get('doubling-max', '0')) : undefined,
    shm: get('shm', 'on') as Args['shm'],
  };
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)B?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (examples: 4K, 1M, 64M)`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(m[1]) * mult);
}

function label(bytes: number): string {
  for (const [unit, v] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) if (bytes >= v && bytes % v === 0) return `${bytes / v}${unit}`;
  return `${bytes}`;
}

/** Minimum warm-up time per size, here and in the Gloo reference. */
const WARMUP_MS = 200;
/**
 * Timed iterations per size: at least --iters and enough for TIMED_MS at the warm-up's pace, at most
 * MAX_TIMED (the same rule in the Gloo reference). Twenty 50 µs iterations last one millisecond, less
 * than the machine's scheduling moods last, so a median of twenty small all-reduces told which mood
 * one run caught rather than how fast it is.
 */
const TIMED_MS = 100;
const MAX_TIMED = 2000;

/** How many iterations to time, from the warm-up's milliseconds per iteration (rank 0's; the same rule as the Gloo reference). */
function timedIterations(minIters: number, msPerIter: number): number {
  return Math.min(MAX_TIMED, Math.max(minIters, Math.ceil(TIMED_MS / Math.max(msPerIter, 1e-3))));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---- worker: one rank -----------------------------------------------------------------------

async function worker(a: Args, world: number): Promise<void> {
  const group = { chunkBytes: a.chunkBytes, directMaxBytes: a.directMaxBytes, doublingMaxBytes: a.doublingMaxBytes, reducer: tensorReducer };
  const sharedMemory = a.shm === 'on' ? shmNative() : null;
  const c = await rendezvous({ rank: a.rank, worldSize: world, masterHost: '127.0.0.1', masterPort: a.port, hostStore: false, timeoutMs: 30_000, group, sharedMemory });
  if (c.rank === 0 && sharedMemory && c.group.transport === c.transport) process.stderr.write('allreduce bench: shared memory unavailable, ranks talk TCP\n');
  const rows: Row[] = [];
  const opts = { algorithm: a.algorithm };
  for (const bytes of a.sizes) {
    const buf = new Float32Array(Math.max(1, bytes >> 2)).fill(1);
    // Warm-up: the iteration count, and at least WARMUP_MS (the JIT needs a few hundred calls);
    // rank 0's clock decides, so every rank runs the same number of iterations.
    const start = performance.now();
    const more = new Float32Array(1);
    let warm = 0;
    for (;;) {
      for (let k = 0; k < 10; k++, warm++) await c.group.allReduce(buf, opts);
      more[0] = warm < a.warmup || performance.now() - start < WARMUP_MS ? 1 : 0;
      if (!(await c.group.broadcast(more, 0))[0]) break;
    }
    more[0] = timedIterations(a.iters, (performance.now() - start) / warm);
    const iters = (await c.group.broadcast(more, 0))[0];
    const times = new Float32Array(iters);
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await c.group.allReduce(buf, opts);
      times[i] = (performance.now() - t0) * 1000;
    }
    await c.group.allReduce(times, { op: 'max' });
    if (process.env.BENCH_DEBUG && c.rank === 0) process.stderr.write(`${bytes}: ${[...times].map((t) => (t / 1000).toFixed(1)).join(' ')}\n`);
    rows.push({ bytes, medianUs: median([...times]) });
  }
  if (c.rank === 0) process.send!({ rows });
  await c.group.barrier();
  await c.close();
}

async function runOurs(a: Args, world: number, shm: 'on' | 'off'): Promise<Row[]> {
  const token = generateToken();
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token, worldSize: world, signature: '' });
  const tuning = ['--shm', shm, '--algorithm', a.algorithm, '--chunk', String(a.chunkBytes), ...(a.directMaxBytes !== undefined ? ['--direct-max', String(a.directMaxBytes)] : []),
    ...(a.doublingMaxBytes !== undefined ? ['--doubling-max', String(a.doublingMaxBytes)] : []),
  ];
  const args = [...tuning, '--role', 'worker', '--workers', String(world), '--sizes', a.sizes.join(','), '--iters', String(a.iters), '--warmup', String(a.warmup), '--port', String(store.port)];
  const kids = Array.from({ length: world }, (_, r) => fork(SELF, [...args, '--rank', String(r)], { env: { ...process.env, [TOKEN_ENV]: token } }));
  try {
    const rows = await new Promise<Row[]>((resolve, reject) => {
      kids[0].on('message', (m: { rows: Row[] }) => resolve(m.rows));
      for (const k of kids) k.on('exit', (code) => code && reject(new Error(`a worker exited with code ${code}`)));
    });
    await Promise.all(kids.map((k) => new Promise((r) => (k.exitCode !== null ? r(null) : k.on('exit', r)))));
    return rows;
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill();
    await store.close();
  }
}

// ---- raw TCP loopback reference ------------------------------------------------------------

const RAW_BYTES = 1 << 30;

/** Child side: dials the parent and reads RAW_BYTES into one reused buffer, then reports. */
function tcpSink(port: number): void {
  const buf = Buffer.allocUnsafe(4 << 20);
  let got = 0;
  net.connect({
    port,
    host: '127.0.0.1',
    onread: {
      buffer: buf,
      callback: (n: number) => {
        got += n;
        if (got === RAW_BYTES) process.send!({ done: true }, () => process.exit(0));
        return true;
      },
    },
  });
}

/** Parent side: writes RAW_BYTES in 4 MB writes to a child process; one-way GB/s. */
async function rawTcpGBps(): Promise<number> {
  let t0 = 0;
  const server = net.createServer((s) => {
    const chunk = Buffer.alloc(4 << 20, 1);
    let sent = 0;
    t0 = performance.now();
    const pump = (): void => {
      while (sent < RAW_BYTES) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kid = fork(SELF, ['--role', 'tcp-sink', '--port', String((server.address() as net.AddressInfo).port)]);
  try {
    await new Promise((r) => kid.once('message', r));
    return RAW_BYTES / ((performance.now() - t0) / 1000) / 1e9;
  } finally {
    kid.kill();
    server.close();
  }
}

// ---- raw shared-memory reference -----------------------------------------------------------

const SHM_PIECE = 1 << 20;

/**
 * One-way bytes per second through one shared-memory ring between two processes (the wire the
 * shared-memory transport writes to): the parent writes RAW_BYTES in pieces of up to 1 MiB into the
 * ring as space allows, the child copies them out into one reused buffer; each rings the other's
 * doorbell word (futex) when it moved bytes and sleeps on its own when it cannot. Null without the addon.
 */
async function rawShmGBps(): Promise<number | null> {
  const native = shmNative();
  if (!native) return null;
  const name = `/smolcluster-${process.pid}-bench`;
  const inbox = new Inbox(native.shmCreate(name, inboxBytes(2, DEFAULT_RING_BYTES)), 2, DEFAULT_RING_BYTES);
  const kid = fork(SELF, ['--role', 'shm-sink', '--segment', name]);
  try {
    await new Promise((r) => kid.once('message', r)); // mapped
    native.shmUnlink(name);
    const ring = inbox.ringFrom(0);
    const src = new Uint8Array(SHM_PIECE).fill(1);
    const done = new Promise((r) => kid.once('message', r));
    const t0 = performance.now();
    for (let sent = 0; sent < RAW_BYTES; ) {
      const bell = Atomics.load(inbox.flags, 1);
      const count = Math.min(SHM_PIECE, RAW_BYTES - sent, ring.writable());
      if (count === 0) {
        await native.futexWait(inbox.flags, 1, bell, 1000);
        continue;
      }
      ring.writePiece(src, 0, count);
      sent += count;
      Atomics.add(inbox.flags, 0, 1);
      native.futexWake(inbox.flags, 0);
    }
    await done;
    return RAW_BYTES / ((performance.now() - t0) / 1000) / 1e9;
  } finally {
    native.shmUnlink(name);
    kid.kill();
  }
}

async function shmSink(name: string): Promise<void> {
  const native = shmNative()!;
  const inbox = new Inbox(native.shmOpen(name, inboxBytes(2, DEFAULT_RING_BYTES)), 2, DEFAULT_RING_BYTES);
  const ring = inbox.ringFrom(0);
  const dst = new Uint8Array(SHM_PIECE);
  process.send!({ mapped: true });
  for (let got = 0; got < RAW_BYTES; ) {
    const bell = Atomics.load(inbox.flags, 0);
    const count = Math.min(SHM_PIECE, ring.readable());
    if (count === 0) {
      await native.futexWait(inbox.flags, 0, bell, 1000);
      continue;
    }
    ring.readPiece(dst, 0, count);
    got += count;
    Atomics.add(inbox.flags, 1, 1);
    native.futexWake(inbox.flags, 1);
  }
  process.send!({ done: true }, () => process.exit(0));
}

// ---- Gloo reference --------------------------------------------------------------------------

function runGloo(a: Args, world: number): Row[] | null {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch.distributed as d; assert d.is_gloo_available()'], { encoding: 'utf8' });
  if (probe.status !== 0) return null;
  const res = spawnSync('/usr/bin/python3', [GLOO_SCRIPT, '--workers', String(world), '--sizes', a.sizes.join(','), '--iters', String(a.iters), '--warmup', String(a.warmup)], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (res.status !== 0) {
    process.stderr.write(`gloo reference failed: ${res.stderr.trim().split('\n').slice(-1)[0]}\n`);
    return null;
  }
  const out = JSON.parse(res.stdout.trim().split('\n').slice(-1)[0]) as { results: Array<{ bytes: number; median_us: number }> };
  return out.results.map((r) => ({ bytes: r.bytes, medianUs: r.median_us }));
}

/** Per size, the better of two runs' medians (an empty run counts as missing). */
function best(a: Row[], b: Row[]): Row[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return a.map((r, i) => (b[i].medianUs < r.medianUs ? b[i] : r));
}

// ---- report ----------------------------------------------------------------------------------

function bw(bytes: number, us: number, n: number): { algbw: number; busbw: number } {
  const algbw = bytes / (us * 1e-6) / 1e9;
  return { algbw, busbw: (algbw * 2 * (n - 1)) / n };
}

const f = (x: number, d = 2): string => x.toFixed(d);

function report(n: number, transport: string, ours: Row[], gloo: Row[] | null, rawTcp: number): Record<string, unknown> {
  console.log(`\nall-reduce float32, ${n} ranks on one host, ours over ${transport} (median of per-iteration max over ranks)`);
  console.log(`${'size'.padStart(6)} ${'time(us)'.padStart(10)} ${'algbw'.padStart(7)} ${'busbw'.padStart(7)} ${'/rawTCP'.padStart(7)}  |${'gloo(us)'.padStart(10)} ${'busbw'.padStart(7)}  | ours/gloo busbw`);
  const rows = ours.map((r, i) => {
    const o = bw(r.bytes, r.medianUs, n);
    const g = gloo ? gloo[i] : null;
    const gb = g ? bw(g.bytes, g.medianUs, n) : null;
    const ratio = gb ? o.busbw / gb.busbw : null;
    const gcols = g && gb ? `${f(g.medianUs, 1).padStart(10)} ${f(gb.busbw).padStart(7)}  | ${f(ratio!)}x` : `${'-'.padStart(10)} ${'-'.padStart(7)}  | -`;
    const ofRaw = o.busbw / rawTcp;
    console.log(`${label(r.bytes).padStart(6)} ${f(r.medianUs, 1).padStart(10)} ${f(o.algbw).padStart(7)} ${f(o.busbw).padStart(7)} ${`${(ofRaw * 100).toFixed(0)}%`.padStart(7)}  |${gcols}`);
    return { bytes: r.bytes, us: r.medianUs, algbw: o.algbw, busbw: o.busbw, busbwOfRawTcp: ofRaw, glooUs: g?.medianUs ?? null, glooBusbw: gb?.busbw ?? null, busbwRatio: ratio };
  });
  const small = rows[0];
  const latencyRatio = small.glooUs ? small.us / small.glooUs : null;
  if (latencyRatio !== null) console.log(`${label(small.bytes)} latency ours/gloo: ${f(latencyRatio)} (lower is better)`);
  return { workers: n, transport, rows, smallLatencyRatio: latencyRatio };
}

async function main(a: Args): Promise<void> {
  const loadBefore = os.loadavg()[0];
  const raw = await rawTcpGBps();
  console.log(`raw Node TCP loopback, one way: ${f(raw)} GB/s`);
  const rawShm = await rawShmGBps();
  console.log(`raw shared-memory ring between two processes, one way: ${rawShm === null ? 'n/a (no addon)' : `${f(rawShm)} GB/s`}`);
  const modes: Array<'on' | 'off'> = a.shm === 'both' ? ['on', 'off'] : [a.shm === 'off' ? 'off' : 'on'];
  const results: Array<Record<string, unknown>> = [];
  for (const n of a.workers) {
    const ours = new Map<'on' | 'off', Row[]>(modes.map((m) => [m, []]));
    let gloo: Row[] | null = null;
    for (let i = 0; i < a.repeat; i++) {
      for (const m of modes) ours.set(m, best(ours.get(m)!, await runOurs(a, n, m)));
      if (a.gloo) gloo = best(gloo ?? [], runGloo(a, n) ?? []);
    }
    for (const m of modes) results.push(report(n, m === 'on' ? 'shared memory' : 'TCP', ours.get(m)!, gloo && gloo.length ? gloo : null, raw));
  }
  const load = [loadBefore, os.loadavg()[0]];
  console.log(`\nload average (1 min) at start and end: ${load.map((l) => f(l)).join(', ')} on ${os.availableParallelism()} cores`);
  console.log(JSON.stringify({ bench: 'allreduce', node: process.version, rawTcpGBps: raw, rawShmGBps: rawShm, load, iters: a.iters, warmup: a.warmup, repeat: a.repeat, results }));
}

const args = parseArgs(process.argv.slice(2));
if (args.role === 'worker') await worker(args, args.workers[0]);
else if (args.role === 'tcp-sink') tcpSink(args.port);
else if (args.role === 'shm-sink') await shmSink(process.argv[process.argv.indexOf('--segment') + 1]);
else await main(args);
