/**
 * bench:metric-stream — what streaming every rank's lines to rank 0 (src/metrics/remote) costs a
 * training run. Two workers on 127.0.0.1 (allreduce, one thread each, MLP on MNIST), run twice per
 * pass: with one experiments folder (rank 1 finds rank 0's marker and sends nothing: the reference)
 * and with a folder each (rank 1 streams every step and event to rank 0) — and the reference once
 * more, as a control: how far two runs of the same thing disagree on this machine right now. Each
 * pass runs the three in a rotated order. Per pass: streamed ÷ reference and control ÷ reference
 * samples/s over the wall time from step WARMUP to the last (rank 0's metrics.jsonl, which holds
 * both ranks either way), and each rank's CPU time (user + system, /usr/bin/time where present),
 * which the neighbours' load moves far less than wall time. The summary is the median and range
 * over passes; a wall-time ratio whose range is no wider than the control's is a result, and the
 * CPU time streamed − reference (ms per step, median) is the stream's own cost.
 *
 *   flock /tmp/smolcluster-bench.lock npm run bench:metric-stream -- [--steps 2000] [--passes 6] [--batch 32]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from './lib/free_port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtNum, machineInfo, renderTable } from './lib/index.js';
import { median } from './lib/stats.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const WARMUP = 20;

interface Options {
  steps: number;
  passes: number;
  batch: number;
}

function options(argv: string[]): Options {
  const o: Options = { steps: 2000, passes: 6, batch: 32 };
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


const TIME = '/usr/bin/time';

/** Runs one worker; resolves with its CPU time (user + system, ms), NaN where /usr/bin/time is missing. */
function worker(rank: number, port: number, dir: string, o: Options, cpuFile: string): Promise<number> {
  const timed = existsSync(TIME);
  const node = [process.execPath, CLI, 'worker', '--rank', String(rank), '--world-size', '2', '--master', `127.0.0.1:${port}`, '--max-steps', String(o.steps), '--epochs', '20',
    '--batch-size', String(o.batch), '--threads', '1', '--timeout', '60', '--name', 'run', '--experiments-dir', dir, '--eval-every', '0', '--checksum-every', '0'];
  const [cmd, ...args] = timed ? [TIME, '-f', '%U %S', '-o', cpuFile, ...node] : node;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, SMOLCLUSTER_TOKEN: 'bench-metric-stream-token-0123456789' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('close', (code) => (code === 0 ? resolve(timed ? cpuMs(cpuFile) : NaN) : reject(new Error(`rank ${rank} exited with ${code}: ${err.slice(-500)}`))));
  });
}

/** "user system" seconds as written by /usr/bin/time -f '%U %S' (its last line). */
function cpuMs(file: string): number {
  const last = readFileSync(file, 'utf8').trim().split('\n').at(-1) ?? '';
  const [user, sys] = last.split(' ').map(Number);
  return (user + sys) * 1000;
}

interface Figures {
  /** Samples of both ranks over rank 0's wall time from step WARMUP to its last step. */
  samplesPerSec: number;
  /** Per rank: CPU time of the whole process (ms). */
  cpuMs: number[];
  streamed: number;
  dropped: number;
}

type Mode = 'reference' | 'streamed' | 'control';

async function runOnce(mode: Mode, o: Options): Promise<Figures> {
  const streamed = mode === 'streamed';
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-bench-stream-'));
  try {
    const port = await freePort();
    const dirs = [join(root, 'rank0'), streamed ? join(root, 'rank1') : join(root, 'rank0')];
    const cpu = await Promise.all([0, 1].map((r) => worker(r, port, dirs[r], o, join(root, `cpu${r}`))));
    const lines = readFileSync(join(dirs[0], 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    const steps = lines.filter((l) => l.kind === 'step' && (l.step as number) >= WARMUP);
    const byRank = [0, 1].map((r) => steps.filter((l) => l.rank === r));
    if (byRank.some((rs) => rs.length !== o.steps - WARMUP)) throw new Error(`rank 0's metrics.jsonl has ${byRank.map((rs) => rs.length).join('/')} steps per rank, expected ${o.steps - WARMUP}`);
    const events = readFileSync(join(dirs[0], 'run', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const account = events.find((e) => e.kind === 'metric_stream');
    const samples = steps.reduce((s, l) => s + (l.samples as number), 0);
    const times = byRank[0].map((l) => l.time as number);
    return {
      samplesPerSec: samples / ((Math.max(...times) - Math.min(...times)) / 1000),
      cpuMs: cpu,
      streamed: Number(account?.records ?? 0),
      dropped: Number(account?.dropped ?? 0),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const ORDERS: Mode[][] = [['reference', 'streamed', 'control'], ['streamed', 'control', 'reference'], ['control', 'reference', 'streamed']];

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const machine = machineInfo();
  const rows: string[][] = [];
  const all: Array<Record<Mode, Figures> & { pass: number }> = [];
  for (let pass = 1; pass <= o.passes; pass++) {
    process.stderr.write(`bench:metric-stream: pass ${pass}/${o.passes} …\n`);
    const got = {} as Record<Mode, Figures>;
    for (const mode of ORDERS[(pass - 1) % ORDERS.length]) got[mode] = await runOnce(mode, o);
    all.push({ pass, ...got });
    const { reference: a, streamed: b, control: c } = got;
    const perStep = (f: Figures, r: number): number => (f.cpuMs[r] - a.cpuMs[r]) / o.steps;
    rows.push([
      String(pass), fmtNum(a.samplesPerSec, 0), fmtNum(b.samplesPerSec, 0), fmtNum(c.samplesPerSec, 0),
      `${(b.samplesPerSec / a.samplesPerSec).toFixed(3)}×`, `${(c.samplesPerSec / a.samplesPerSec).toFixed(3)}×`,
      `${perStep(b, 0).toFixed(3)} / ${perStep(b, 1).toFixed(3)}`, `${perStep(c, 0).toFixed(3)} / ${perStep(c, 1).toFixed(3)}`,
      `${b.streamed} (${b.dropped} dropped)`,
    ]);
  }
  process.stdout.write(`bench:metric-stream — 2 workers on 127.0.0.1 (allreduce, 1 thread each), mlp 784-128-10, batch ${o.batch} per worker, ${o.steps} steps (wall time from step ${WARMUP}); load average ${machine.loadAvg1} at start, ${machineInfo().loadAvg1} at the end\n\n`);
  process.stdout.write(renderTable([
    { header: 'pass' }, { header: 'samples/s reference' }, { header: 'streamed' }, { header: 'control' },
    { header: 'streamed ÷ ref' }, { header: 'control ÷ ref' }, { header: 'CPU ms/step r0 / r1, streamed − ref' }, { header: 'control − ref' }, { header: 'lines streamed' },
  ], rows) + '\n');
  const summary = (label: string, xs: number[], digits: number, unit: string): string =>
    `${label}: median ${median(xs).toFixed(digits)}${unit}, range ${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}${unit}`;
  const ratio = (m: Mode): number[] => all.map((p) => p[m].samplesPerSec / p.reference.samplesPerSec);
  const cpu = (m: Mode, r: number): number[] => all.map((p) => (p[m].cpuMs[r] - p.reference.cpuMs[r]) / o.steps);
  process.stdout.write(`${summary('streamed ÷ reference samples/s', ratio('streamed'), 3, '×')}\n${summary('control ÷ reference (the machine\'s own spread)', ratio('control'), 3, '×')}\n`);
  for (const r of [0, 1]) {
    process.stdout.write(`${summary(`rank ${r} CPU ms per step, streamed − reference`, cpu('streamed', r), 3, ' ms')}; ${summary('control − reference', cpu('control', r), 3, ' ms')}\n`);
  }
  process.stdout.write(JSON.stringify({ bench: 'metric-stream', options: o, machine, passes: all }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
