/**
 * npm run bench:zero-memory -- [--layers 20] [--width 512] [--workers 4] [--steps 3] [--cap-mb N] [--keep]
 * npm run bench:zero-memory -- --rss [--model gpt2] [--workers 4] [--steps 3] [--eval-batch-size N] [--lora]
 *
 * --rss: issue 29's measurement. Each rank's peak RSS (the kernel's VmHWM, polled under the
 * launcher: bench/lib/rss_sampler.ts) of `train --workers N --model M --dataset synthetic_text --context 64 --batch-size 1
 * --optimizer adamw --max-steps S` with plain data parallelism, --zero 1 and --zero 3, one run after
 * the other; the last line is one JSON object with every rank's peak and the ratios of the largest
 * peaks (ZeRO-3 ÷ plain, ZeRO-3 ÷ ZeRO-1). The final evaluation is part of the command: rank 0's
 * in plain data parallelism and ZeRO-1, every rank's share under ZeRO-3, layer-major within the same
 * byte budget (src/train/loop/layered_evaluation.ts); --eval-batch-size N caps the batch further. --lora adds
 * `--lora-rank 16` to every run (the family's default targets, a frozen fp32 base): ZeRO-1 holds the
 * frozen base whole on every rank, ZeRO-3 shards it (parallel/zero/frozen_shards.ts). Needs Linux
 * (/proc); no root.
 *
 * A model that does not fit: GPT-2 resized (--layers × --width, synthetic_text, context 32) on
 * `--workers` worker processes on 127.0.0.1 (one thread each), every worker in its own cgroup v1
 * memory group (bench/lib/capped_cluster.ts). First both runs uncapped, to measure each worker's
 * peak (memory.max_usage_in_bytes): plain data parallelism (allreduce) and --zero 3. Then both
 * under the same per-worker cap — by default halfway between ZeRO-3's largest peak and plain DDP's
 * smallest — where plain data parallelism is killed by the OOM killer and --zero 3 trains the same
 * model to the same losses (compared step by step with the uncapped DDP run, 1e-5 relative).
 *
 * Needs Linux, root and a cgroup v1 memory controller; says so and exits 2 otherwise. Last line:
 * one JSON object with every figure. A shared machine changes the times, not the bytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMetrics } from '../src/metrics/reader.js';
import { memoryControllerAvailable } from '../src/validate/memory_cap.js';
import { type CappedRun, runCappedCluster } from './lib/capped_cluster.js';
import { RssSampler } from './lib/rss_sampler.js';

interface Options {
  rss: boolean;
  lora: boolean;
  model: string;
  evalBatch: number | null;
  layers: number;
  width: number;
  workers: number;
  steps: number;
  capMb: number | null;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rss: false, lora: false, model: 'gpt2', evalBatch: null, layers: 20, width: 512, workers: 4, steps: 3, capMb: null, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag}: expected a positive number, got ${argv[i]}`);
      return v;
    };
    if (flag === '--layers') o.layers = next();
    else if (flag === '--width') o.width = next();
    else if (flag === '--workers') o.workers = next();
    else if (flag === '--steps') o.steps = next();
    else if (flag === '--cap-mb') o.capMb = next();
    else if (flag === '--keep') o.keep = true;
    else if (flag === '--rss') o.rss = true;
    else if (flag === '--lora') o.lora = true;
    else if (flag === '--model') o.model = argv[++i];
    else if (flag === '--eval-batch-size') o.evalBatch = next();
    else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

const MB = 2 ** 20;

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

/** One `train` run's launcher; every rank's VmHWM (pid order: ranks start in rank order). */
function peaksOf(args: string[]): Promise<{ code: number | null; stderr: string; peaks: number[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'train', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const sampler = new RssSampler([child.pid!], false, 50, 'node');
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('close', (code) => resolve({ code, stderr, peaks: sampler.stop() }));
  });
}

/** --rss: plain data parallelism, --zero 1 and --zero 3 on the issue's command, each rank's peak RSS. */
async function rssMain(o: Options): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-zero-rss-'));
  const command = [
    '--workers', String(o.workers), '--model', o.model, '--dataset', 'synthetic_text', '--context', '64', '--batch-size', '1', '--optimizer', 'adamw', '--max-steps', String(o.steps),
    ...(o.evalBatch !== null ? ['--eval-batch-size', String(o.evalBatch)] : []),
    ...(o.lora ? ['--lora-rank', '16'] : []),
  ];
  process.stdout.write(`train ${command.join(' ')} [--zero k]: each rank's peak RSS (VmHWM)\n`);
  const peaks: Record<string, number[]> = {};
  try {
    for (const [label, extra] of [['plain', []], ['zero1', ['--zero', '1']], ['zero3', ['--zero', '3']]] as const) {
      const r = await peaksOf([...command, ...extra, '--threads', '1', '--timeout', '600', '--eval-every', '0', '--experiments-dir', dir, '--name', label]);
      if (r.code !== 0) throw new Error(`${label} failed:\n${r.stderr.slice(-2000)}`);
      peaks[label] = r.peaks.map((b) => Math.round(b / MB));
      process.stdout.write(`${label.padEnd(6)} peaks ${peaks[label].join(', ')} MB\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const top = (k: string): number => Math.max(...peaks[k]);
  const ratios = { zero3_over_plain: top('zero3') / top('plain'), zero3_over_zero1: top('zero3') / top('zero1') };
  process.stdout.write(`largest peak: ZeRO-3 ${ratios.zero3_over_plain.toFixed(2)}× plain data parallelism, ${ratios.zero3_over_zero1.toFixed(2)}× ZeRO-1\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'zero-memory-rss', model: o.model, lora: o.lora, workers: o.workers, steps: o.steps, eval_batch_size: o.evalBatch ?? 'default', peak_mb: peaks, ...ratios })}\n`);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.rss) return rssMain(o);
  if (!memoryControllerAvailable()) {
    process.stdout.write('bench:zero-memory needs Linux, root and a writable cgroup v1 memory controller (/sys/fs/cgroup/memory): not here\n');
    process.exitCode = 2;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-zero-memory-'));
  const args = (name: string, zero: boolean): string[] => [
    '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--layers', String(o.layers), '--width', String(o.width), '--heads', '8', '--context', '32',
    '--batch-size', '2', '--max-steps', String(o.steps), '--eval-batch-size', '16', '--threads', '1', '--timeout', '120', '--checksum-every', '0',
    '--experiments-dir', dir, '--name', name, '--overwrite', ...(zero ? ['--zero', '3'] : []),
  ];
  const run = async (name: string, zero: boolean, capBytes: number | null): Promise<CappedRun & { losses: number[] }> => {
    const r = await runCappedCluster({ args: args(name, zero), workers: o.workers, capBytes, tag: name, timeoutMs: 600_000 });
    let losses: number[] = [];
    try {
      losses = readMetrics(join(dir, name, 'metrics.jsonl')).steps.filter((s) => s.rank === 0).sort((a, b) => a.step - b.step).map((s) => Number(s.loss));
    } catch {
      // killed before writing any step
    }
    const peaks = r.peakBytes.map((b) => Math.round(b / MB)).join(', ');
    const how = r.codes.map((c, i) => (c === 0 ? 'ok' : r.signals[i] ?? `exit ${c}`)).join(', ');
    process.stdout.write(`${name.padEnd(16)} ${capBytes === null ? 'uncapped' : `cap ${Math.round(capBytes / MB)} MB`}: workers ${how}; peaks ${peaks} MB; OOM kills ${r.oomKills.join(', ')}; ${r.seconds.toFixed(1)} s; losses ${losses.map((l) => l.toFixed(5)).join(' ')}\n`);
    return { ...r, losses };
  };
  try {
    process.stdout.write(`GPT-2 ${o.layers} layers × width ${o.width}, ${o.workers} workers, ${o.steps} steps, AdamW, fp32\n`);
    const ddp = await run('ddp-uncapped', false, null);
    const zero = await run('zero3-uncapped', true, null);
    if (ddp.codes.some((c) => c !== 0) || zero.codes.some((c) => c !== 0)) throw new Error(`an uncapped run failed:\n${[...ddp.stderr, ...zero.stderr].join('\n').slice(-2000)}`);
    const zeroPeak = Math.max(...zero.peakBytes);
    const ddpPeak = Math.min(...ddp.peakBytes);
    const cap = o.capMb !== null ? o.capMb * MB : Math.round((zeroPeak + ddpPeak) / 2);
    if (o.capMb === null && ddpPeak - zeroPeak < 100 * MB) throw new Error(`no room for a cap: ZeRO-3's largest peak ${Math.round(zeroPeak / MB)} MB, DDP's smallest ${Math.round(ddpPeak / MB)} MB; use a larger model`);
    const ddpCapped = await run('ddp-capped', false, cap);
    const zeroCapped = await run('zero3-capped', true, cap);
    const ddpKilled = ddpCapped.oomKills.some((k) => k > 0);
    const zeroTrained = zeroCapped.codes.every((c) => c === 0) && zeroCapped.oomKills.every((k) => k === 0);
    const worst = zeroCapped.losses.length === ddp.losses.length && ddp.losses.length > 0
      ? Math.max(...ddp.losses.map((l, i) => Math.abs(zeroCapped.losses[i] - l) / Math.abs(l))) : Infinity;
    process.stdout.write(`under ${Math.round(cap / MB)} MB per worker: plain DDP ${ddpKilled ? 'killed for lack of memory' : 'NOT killed'}; --zero 3 ${zeroTrained ? 'trained' : 'FAILED'}, losses within ${worst.toExponential(2)} of uncapped DDP's\n`);
    process.stdout.write(`${JSON.stringify({
      bench: 'zero-memory', layers: o.layers, width: o.width, workers: o.workers, steps: o.steps, cap_mb: Math.round(cap / MB),
      ddp_peak_mb: ddp.peakBytes.map((b) => Math.round(b / MB)), zero3_peak_mb: zero.peakBytes.map((b) => Math.round(b / MB)),
      ddp_capped_oom_kills: ddpCapped.oomKills, ddp_capped_signals: ddpCapped.signals, zero3_capped_codes: zeroCapped.codes,
      zero3_capped_peak_mb: zeroCapped.peakBytes.map((b) => Math.round(b / MB)), losses_ddp: ddp.losses, losses_zero3_capped: zeroCapped.losses, worst_loss_rel_diff: worst,
    })}\n`);
    if (!ddpKilled || !zeroTrained || !(worst <= 1e-5)) process.exitCode = 1;
  } finally {
    if (o.keep) process.stdout.write(`runs kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
