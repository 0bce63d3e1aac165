/**
 * npm run bench:ddp -- [--workers 2] [--batches 32,256] [--quick] [--no-torch]
 *
 * Data-parallel MNIST MLP (784-128-10, SGD momentum 0.9) training throughput of a local cluster,
 * one thread per worker, at each per-rank batch size: ours through the real CLI
 * (`train --workers N`), and PyTorch DDP over Gloo (bench/reference/ddp_torch.py) when
 * /usr/bin/python3 can import torch. Both record the wall-clock end of every step; both are
 * windowed the same way (bench/lib/step_windows.ts) and reported as cluster samples/s (all ranks)
 * with the ratio ours/torch. Last line: one JSON object with every figure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMnistDir } from '../src/data/mnist.js';
import { findPythonWith, fmtNum, fmtRatio, machineInfo, packageRoot, ratio, renderTable, threadEnv } from './lib/index.js';
import { windowsFromStepTimes } from './lib/step_windows.js';

interface Options {
  workers: number;
  batches: number[];
  quick: boolean;
  torch: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { workers: 2, batches: [32, 256], quick: false, torch: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--workers') o.workers = Number(argv[++i]);
    else if (a === '--batches') o.batches = argv[++i].split(',').map(Number);
    else if (a === '--quick') o.quick = true;
    else if (a === '--no-torch') o.torch = false;
    else throw new Error(`bench:ddp: unknown argument ${a}`);
  }
  if (!(o.workers >= 2) || o.batches.some((b) => !(b >= 1))) throw new Error('bench:ddp: --workers must be ≥ 2 and batches positive');
  return o;
}

/** Enough steps for a warm-up and 7 windows of roughly half a second each. */
function stepsFor(batch: number, quick: boolean): number {
  const steps = batch <= 64 ? 2500 : 800;
  return quick ? Math.round(steps / 2) : steps;
}

const ROOT = packageRoot(import.meta.url);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function ours(o: Options, batch: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-ddp-'));
  try {
    const cli = join(ROOT, 'dist/src/cli/main.js');
    // Epochs high enough that --max-steps, not the dataset size, ends the run (as in the torch script).
    const args = [cli, 'train', '--workers', String(o.workers), '--batch-size', String(batch), '--max-steps', String(stepsFor(batch, o.quick)),
      '--epochs', '1000', '--threads', '1', '--name', 'ddp', '--experiments-dir', dir];
    const r = await run(process.execPath, args, threadEnv(1));
    if (r.code !== 0) throw new Error(`smolcluster train failed: ${r.stderr.trim().split('\n').pop()}`);
    const ends = readFileSync(join(dir, 'ddp', 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { kind: string; rank: number; step: number; time: number })
      .filter((r) => r.kind === 'step' && r.rank === 0)
      .sort((a, b) => a.step - b.step)
      .map((r) => r.time);
    return windowsFromStepTimes(ends, batch * o.workers).median;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function torchDdp(o: Options, python: string, batch: number): Promise<number> {
  const port = await freePort();
  const script = join(ROOT, 'bench/reference/ddp_torch.py');
  const args = [script, '--data-dir', defaultMnistDir(), '--batch-size', String(batch), '--steps', String(stepsFor(batch, o.quick))];
  const ranks = Array.from({ length: o.workers }, (_, rank) =>
    run(python, args, threadEnv(1, { RANK: String(rank), WORLD_SIZE: String(o.workers), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) })));
  const [first, ...rest] = await Promise.all(ranks);
  for (const r of [first, ...rest]) if (r.code !== 0) throw new Error(`torch DDP failed: ${r.stderr.trim().split('\n').pop()}`);
  const out = JSON.parse(first.stdout.trim().split('\n').pop() ?? '{}') as { step_end_times_ms: number[] };
  return windowsFromStepTimes(out.step_end_times_ms, batch * o.workers).median;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const probe = o.torch ? findPythonWith('torch') : { found: null, reason: 'disabled by --no-torch' };
  if (!probe.found) process.stderr.write(`bench:ddp: PyTorch reference skipped (${probe.reason})\n`);
  const rows: { batch: number; ours: number; torch: number | null; ratio: number | null }[] = [];
  for (const batch of o.batches) {
    process.stderr.write(`bench:ddp: ${o.workers} workers, batch ${batch} per rank ...\n`);
    const mine = await ours(o, batch);
    const ref = probe.found ? await torchDdp(o, probe.found.python, batch) : null;
    rows.push({ batch, ours: mine, torch: ref, ratio: ratio(mine, ref) });
  }
  const table = renderTable(
    [{ header: 'batch/rank' }, { header: 'smolcluster samples/s', align: 'right' }, { header: 'torch DDP (gloo)', align: 'right' }, { header: 'ratio', align: 'right' }, { header: 'target' }],
    rows.map((r) => [String(r.batch), fmtNum(r.ours, 0), fmtNum(r.torch, 0), fmtRatio(r.ratio), '≥ 1.00×']),
  );
  process.stdout.write(`MNIST MLP data-parallel training, ${o.workers} workers on 127.0.0.1, 1 thread each (cluster samples/s, median of 7 windows)\n${table}\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'ddp', workers: o.workers, results: rows, torch: probe.found, machine: machineInfo() })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:ddp: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
