/**
 * npm run bench:zero-memory -- [--layers 20] [--width 512] [--workers 4] [--steps 3] [--cap-mb N] [--keep]
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
import { join } from 'node:path';
import { readMetrics } from '../src/metrics/reader.js';
import { memoryControllerAvailable } from '../src/validate/memory_cap.js';
import { type CappedRun, runCappedCluster } from './lib/capped_cluster.js';

interface Options {
  layers: number;
  width: number;
  workers: number;
  steps: number;
  capMb: number | null;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { layers: 20, width: 512, workers: 4, steps: 3, capMb: null, keep: false };
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
    else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

const MB = 2 ** 20;

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
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
