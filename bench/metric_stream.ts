/**
 * bench:metric-stream — what streaming every rank's lines to rank 0 (src/metrics/remote) costs a
 * training run. Two workers on 127.0.0.1 (allreduce, one thread each, MLP on MNIST), run twice per
 * pass: with one experiments folder (rank 1 finds rank 0's marker and sends nothing: the reference)
 * and with a folder each (rank 1 streams every step and event to rank 0). The order alternates
 * between passes. Figures are the steps' own times (compute + communication + wait, measured in
 * the loop) over steps [warm-up, end), from rank 0's metrics.jsonl, which holds both ranks either way.
 *
 *   flock /tmp/smolcluster-bench.lock npm run bench:metric-stream -- [--steps 400] [--passes 3] [--batch 32]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtNum, machineInfo, mean, renderTable } from './lib/index.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const WARMUP = 20;

interface Options {
  steps: number;
  passes: number;
  batch: number;
}

function options(argv: string[]): Options {
  const o: Options = { steps: 400, passes: 3, batch: 32 };
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1]);
    if (argv[i] === '--steps') o.steps = v;
    else if (argv[i] === '--passes') o.passes = v;
    else if (argv[i] === '--batch') o.batch = v;
    else throw new Error(`bench:metric-stream: unknown option ${argv[i]} (--steps N --passes N --batch N)`);
    i++;
    if (!Number.isInteger(v) || v < 1) throw new Error(`bench:metric-stream: ${argv[i - 1]} expects a positive integer`);
  }
  if (o.steps <= 2 * WARMUP) throw new Error(`bench:metric-stream: --steps must exceed ${2 * WARMUP}`);
  return o;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function worker(rank: number, port: number, dir: string, o: Options): Promise<void> {
  const args = [CLI, 'worker', '--rank', String(rank), '--world-size', '2', '--master', `127.0.0.1:${port}`, '--max-steps', String(o.steps),
    '--batch-size', String(o.batch), '--threads', '1', '--timeout', '60', '--name', 'run', '--experiments-dir', dir, '--eval-every', '0', '--checksum-every', '0'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, SMOLCLUSTER_TOKEN: 'bench-metric-stream-token-0123456789' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`rank ${rank} exited with ${code}: ${err.slice(-500)}`))));
  });
}

interface Figures {
  /** Mean step ms per rank. */
  stepMs: number[];
  samplesPerSec: number;
  streamed: number;
  dropped: number;
}

async function runOnce(streamed: boolean, o: Options): Promise<Figures> {
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-bench-stream-'));
  try {
    const port = await freePort();
    const dirs = [join(root, 'rank0'), streamed ? join(root, 'rank1') : join(root, 'rank0')];
    await Promise.all([0, 1].map((r) => worker(r, port, dirs[r], o)));
    const lines = readFileSync(join(dirs[0], 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    const steps = lines.filter((l) => l.kind === 'step' && (l.step as number) >= WARMUP);
    const dur = (l: Record<string, number | string>): number => (l.compute_ms as number) + (l.comm_ms as number) + (l.wait_ms as number);
    const byRank = [0, 1].map((r) => steps.filter((l) => l.rank === r));
    if (byRank.some((rs) => rs.length !== o.steps - WARMUP)) throw new Error(`rank 0's metrics.jsonl has ${byRank.map((rs) => rs.length).join('/')} steps per rank, expected ${o.steps - WARMUP}`);
    const events = readFileSync(join(dirs[0], 'run', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const account = events.find((e) => e.kind === 'metric_stream');
    const samples = steps.reduce((s, l) => s + (l.samples as number), 0);
    return {
      stepMs: byRank.map((rs) => mean(rs.map(dur))),
      samplesPerSec: samples / (byRank[0].reduce((s, l) => s + dur(l), 0) / 1000),
      streamed: Number(account?.records ?? 0),
      dropped: Number(account?.dropped ?? 0),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const machine = machineInfo();
  const rows: string[][] = [];
  const ratios: number[] = [];
  const all: Array<{ pass: number; shared: Figures; streamed: Figures }> = [];
  for (let pass = 1; pass <= o.passes; pass++) {
    process.stderr.write(`bench:metric-stream: pass ${pass}/${o.passes} …\n`);
    const order = pass % 2 === 1 ? [false, true] : [true, false];
    const got = new Map<boolean, Figures>();
    for (const streamed of order) got.set(streamed, await runOnce(streamed, o));
    const shared = got.get(false)!;
    const streamed = got.get(true)!;
    const ratio = streamed.samplesPerSec / shared.samplesPerSec;
    ratios.push(ratio);
    all.push({ pass, shared, streamed });
    rows.push([
      String(pass), fmtNum(shared.samplesPerSec, 0), fmtNum(streamed.samplesPerSec, 0), `${ratio.toFixed(3)}×`,
      `${fmtNum(shared.stepMs[0], 2)} / ${fmtNum(shared.stepMs[1], 2)}`, `${fmtNum(streamed.stepMs[0], 2)} / ${fmtNum(streamed.stepMs[1], 2)}`,
      `${streamed.streamed} (${streamed.dropped} dropped)`,
    ]);
  }
  process.stdout.write(`bench:metric-stream — 2 workers on 127.0.0.1 (allreduce, 1 thread each), mlp 784-128-10, batch ${o.batch} per worker, ${o.steps} steps (figures from step ${WARMUP}); load average ${machine.loadAvg1} at start\n\n`);
  process.stdout.write(renderTable([
    { header: 'pass' }, { header: 'samples/s, one folder' }, { header: 'streamed' }, { header: 'streamed ÷ one folder' },
    { header: 'step ms r0 / r1, one folder' }, { header: 'streamed' }, { header: 'lines streamed' },
  ], rows) + '\n');
  process.stdout.write(`ratio range ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}×\n`);
  process.stdout.write(JSON.stringify({ bench: 'metric-stream', options: o, machine, passes: all }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
