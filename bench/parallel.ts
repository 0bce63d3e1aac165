/**
 * npm run bench:parallel -- [--model gpt2] [--layers L --width C --heads H] [--context 128] [--batch-size 4]
 *                           [--micro-batches 4] [--steps 6] [--warmup 1] [--workers 4] [--only allreduce,zero3,gpipe,1f1b]
 *                           [--no-torch] [--links wifi|ethernet]
 *
 * Model-scale parallelism against PyTorch (issue 22 §6), GPT-2 (default the 124M preset) as a language
 * model on 4 processes, one thread each, in the same run:
 *  - ours through the real CLI (`train --workers 4 --model gpt2 ... --dataset text --tokenizer gpt2`
 *    on the repository's docs, bench/lib/link_inputs.ts): plain allreduce, `--zero 3`, and
 *    `--pipeline-stages 4 --micro-batches M --pipeline-schedule gpipe|1f1b`;
 *  - torch 2.x over gloo on CPU (bench/reference/parallel_torch.py: Hugging Face GPT2LMHeadModel built
 *    from its config, same shape, context and batch): DDP, FSDP2 `fully_shard`, and
 *    `torch.distributed.pipelining` with ScheduleGPipe / Schedule1F1B over 4 stages.
 * --batch-size is each data-parallel rank's batch; a pipeline (one replica) trains workers × that per
 * step in M micro-batches, so every row trains the same global batch. Throughput: tokens/s of the whole
 * run from rank 0's step end times after --warmup steps (ours: metrics.jsonl; torch: its rank lines).
 * Memory: each rank process's peak RSS, the kernel's VmHWM polled under the process (bench/lib/rss_sampler.ts);
 * the table shows the largest rank. A row whose flags this build's `train --help` does not list, or
 * that `train` refuses as an unknown option or value, is reported "not available in this build"; a torch
 * mode that fails on gloo/CPU is reported with its exception's first line, and the other rows go on.
 *
 * --links wifi|ethernet: 2 workers on two network namespaces joined by bench:links' shaped link
 * (bench/lib/netns.ts); both sides' bytes on the wire per step are the interfaces' transmit counters
 * between step ends (bench/lib/wire_counter.ts), so data parallelism (gradients) and the 2-stage
 * pipeline (activations) can be compared on the link.
 * Last line: one JSON object with every figure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from './lib/free_port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPythonWith, machineInfo, packageRoot, parseLastJsonLine, threadEnv } from './lib/index.js';
import { writeDocsText } from './lib/link_inputs.js';
import { LINK_PRESETS, type Link, createLink, measureRttMs, netnsAvailable } from './lib/netns.js';
import {
  type ParallelOptions, type RowPlan, type RowResult, ROWS, type Side, type TorchRankLine, globalBatch, missingFlags, modelShape, oursFigures,
  parallelTable, parseParallelArgs, pipelineVersusDataParallel, rowFlags, tokensPerSec, torchError, unknownFlagIn,
} from './lib/parallel_report.js';
import { RssSampler } from './lib/rss_sampler.js';
import { type CounterSample, WireCounter, bytesBetween } from './lib/wire_counter.js';

const ROOT = packageRoot(import.meta.url);
const CLI = join(ROOT, 'dist/src/cli/main.js');
const TORCH_SCRIPT = join(ROOT, 'bench/reference/parallel_torch.py');
const TOKEN = 'bench-parallel-token-0123456789abcdef';
/** Deadline of one side of one row (every process of it killed after). */
const RUN_TIMEOUT_MS = 30 * 60_000;
/** After one torch rank reports a failure, the others get this long before they are killed. */
const FAILURE_GRACE_MS = 10_000;

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function start(argv: string[], env: NodeJS.ProcessEnv, onExit: (e: Exit) => void): number {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.on('close', (code, signal) => onExit({ code, signal, stdout, stderr }));
  return child.pid ?? -1;
}

function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Starts every process, polls their peak RSS, waits for all; `rootsAreRanks`: the processes are ranks
 * (else a launcher of ranks). The whole tree is killed at the deadline, or `FAILURE_GRACE_MS` after a
 * process `failFast` picks out; both timers end with the run, so no pid is signalled after it.
 */
async function runAll(argvs: string[][], envs: NodeJS.ProcessEnv[], rootsAreRanks: boolean, failFast: (e: Exit) => boolean): Promise<{ exits: Exit[]; peaks: number[] }> {
  const pids: number[] = [];
  const sampler = new RssSampler(pids, rootsAreRanks);
  const endTree = (): void => killAll([...pids, ...sampler.seen()]);
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    endTree();
  }, RUN_TIMEOUT_MS);
  let grace: NodeJS.Timeout | undefined;
  const exits = await Promise.all(argvs.map((argv, i) => new Promise<Exit>((resolve) => {
    pids.push(start(argv, envs[i], (e) => {
      if (failFast(e) && !grace) grace = setTimeout(endTree, FAILURE_GRACE_MS);
      resolve(timedOut ? { ...e, stderr: `${e.stderr}\ntimed out after ${RUN_TIMEOUT_MS / 60_000} min` } : e);
    }));
  })));
  clearTimeout(deadline);
  clearTimeout(grace);
  return { exits, peaks: sampler.stop() };
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-2).join(' | ').slice(0, 300);
}


let linkPort = 29711;

/** Bytes both hosts sent per step between rank 0's end of step warmup−1 and its last step end. */
function wirePerStep(counters: CounterSample[][], ends: number[], warmup: number): number | null {
  if (ends.length <= warmup || warmup < 1) return null;
  const per = counters.map((c) => bytesBetween(c, ends[warmup - 1], ends[ends.length - 1]));
  return per.some((b) => b === null) ? null : per.reduce((s: number, b) => s + (b as number), 0) / (ends.length - warmup);
}

function commonFlags(o: ParallelOptions, dataFile: string, dir: string): string[] {
  const s = modelShape(o);
  return ['--model', o.model, '--layers', String(s.layers), '--width', String(s.width), '--heads', String(s.heads), '--context', String(o.context),
    '--dataset', 'text', '--tokenizer', 'gpt2', '--data-file', dataFile, '--max-steps', String(o.steps), '--epochs', '1000',
    '--threads', '1', '--checksum-every', '0', '--timeout', '600', '--name', 'p', '--experiments-dir', dir];
}

async function oursRow(o: ParallelOptions, row: RowPlan, help: string, dataFile: string, link: Link | null): Promise<Side> {
  const flags = rowFlags(row, o);
  const missing = missingFlags(help, flags);
  if (missing.length) return { status: 'not available', why: `train --help lists no ${missing.join(', ')}` };
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-bench-parallel-'));
  const counters = link ? link.ns.map((ns, i) => new WireCounter(ns, link.dev[i])) : [];
  try {
    const common = [...commonFlags(o, dataFile, dir), ...flags];
    const env = threadEnv(1, { SMOLCLUSTER_TOKEN: TOKEN });
    for (const k of ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT']) delete env[k];
    const port = linkPort++;
    const argvs = link
      ? [0, 1].map((r) => ['ip', 'netns', 'exec', link.ns[r], process.execPath, CLI, 'worker', '--rank', String(r), '--world-size', '2', '--master', `${link.addr[0]}:${port}`, ...common])
      : [[process.execPath, CLI, 'train', '--workers', String(o.workers), ...common]];
    const { exits, peaks } = await runAll(argvs, argvs.map(() => env), !!link, () => false);
    const wire = counters.map((c) => c.stop());
    const bad = exits.find((e) => e.code !== 0);
    if (bad) {
      const flag = unknownFlagIn(bad.stderr);
      return flag ? { status: 'not available', why: `train refused ${flag}` } : { status: 'failed', why: tail(bad.stderr || bad.stdout) };
    }
    const resultFile = join(dir, 'p', 'result.json');
    const result = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, 'utf8')) as Record<string, unknown>) : {};
    const f = oursFigures(result, readFileSync(join(dir, 'p', 'metrics.jsonl'), 'utf8'), o.warmup);
    const tokens = tokensPerSec(f.stepEnds, globalBatch(o) * o.context, o.warmup);
    return { status: 'ran', tokensPerSec: tokens, peakRssBytes: peaks, bytesPerStep: link ? wirePerStep(wire, f.stepEnds, o.warmup) : f.bytesPerStep,
      note: `result.json samples/s ${f.resultSamplesPerSec?.toFixed(2) ?? '—'}, final loss ${f.finalLoss?.toFixed(4) ?? '—'}` +
        (f.reportedPeakRss.length ? `, reported peak RSS ${f.reportedPeakRss.map((b) => (b / 2 ** 20).toFixed(0)).join('/')} MiB` : '') +
        (f.bubble ? `, bubble ${(100 * f.bubble.measured).toFixed(1)}%${f.bubble.target !== null ? ` (1F1B target ${(100 * f.bubble.target).toFixed(1)}%)` : ''}` : '') };
  } finally {
    counters.forEach((c) => c.stop());
    rmSync(dir, { recursive: true, force: true });
  }
}

async function torchRow(o: ParallelOptions, row: RowPlan, python: string, link: Link | null): Promise<Side> {
  const s = modelShape(o);
  const args = [python, TORCH_SCRIPT, '--mode', row.torchMode, '--layers', String(s.layers), '--width', String(s.width), '--heads', String(s.heads),
    '--positions', String(s.positions), '--dropout', String(s.dropout), '--context', String(o.context),
    '--batch-size', String(row.pipeline ? globalBatch(o) : o.batchSize), '--micro-batches', String(o.microBatches), '--steps', String(o.steps)];
  const port = link ? linkPort++ : await freePort();
  const master = link ? link.addr[0] : '127.0.0.1';
  const argvs = Array.from({ length: o.workers }, (_, r) => (link ? ['ip', 'netns', 'exec', link.ns[r], ...args] : args));
  const envs = argvs.map((_, r) => threadEnv(1, { RANK: String(r), WORLD_SIZE: String(o.workers), MASTER_ADDR: master, MASTER_PORT: String(port),
    ...(link ? { GLOO_SOCKET_IFNAME: link.dev[r] } : {}) }));
  const counters = link ? link.ns.map((ns, i) => new WireCounter(ns, link.dev[i])) : [];
  try {
    const { exits, peaks } = await runAll(argvs, envs, true, (e) => e.code !== 0);
    const wire = counters.map((c) => c.stop());
    const lines = exits.map((e) => parseLastJsonLine<TorchRankLine>(e.stdout));
    const error = torchError(lines);
    if (error) return { status: 'failed', why: error };
    const bad = exits.find((e) => e.code !== 0);
    if (bad) return { status: 'failed', why: tail(bad.stderr) || `exit ${bad.signal ?? bad.code}` };
    const ends = lines[0]?.step_end_times_ms ?? [];
    return { status: 'ran', tokensPerSec: tokensPerSec(ends, globalBatch(o) * o.context, o.warmup), peakRssBytes: peaks,
      bytesPerStep: link ? wirePerStep(wire, ends, o.warmup) : null,
      note: `self-reported ru_maxrss ${lines.map((l) => ((l?.peak_rss_bytes ?? NaN) / 2 ** 20).toFixed(0)).join('/')} MiB, after imports ${lines.map((l) => ((l?.base_rss_bytes ?? NaN) / 2 ** 20).toFixed(0)).join('/')} MiB` };
  } finally {
    counters.forEach((c) => c.stop());
  }
}

async function main(): Promise<void> {
  const o = parseParallelArgs(process.argv.slice(2));
  const help = spawnSync(process.execPath, [CLI, 'train', '--help'], { encoding: 'utf8' });
  if (help.status !== 0) throw new Error(`bench:parallel: ${CLI} train --help failed: ${tail(help.stderr)}`);
  const probe = o.torch ? findPythonWith('transformers') : { found: null, reason: 'disabled by --no-torch' };
  if (!probe.found) process.stderr.write(`bench:parallel: PyTorch reference skipped (${probe.reason}; set SMOLCLUSTER_PYTHON to a Python with torch and transformers)\n`);
  if (o.links) {
    const why = netnsAvailable();
    if (why) throw new Error(`bench:parallel: --links needs network namespaces (${why}); run as root on Linux`);
  }
  const inputs = mkdtempSync(join(tmpdir(), 'smolcluster-bench-parallel-data-'));
  const link = o.links ? await createLink(LINK_PRESETS[o.links]) : null;
  const rows: RowResult[] = [];
  let rttMs: number | null = null;
  try {
    if (link) {
      rttMs = await measureRttMs(link);
      process.stderr.write(`bench:parallel: ${o.links}: TCP round trip ${rttMs.toFixed(2)} ms (median of 30)\n`);
    }
    const dataFile = writeDocsText(inputs, ROOT);
    for (const plan of ROWS.filter((r) => !o.only || o.only.includes(r.id))) {
      process.stderr.write(`bench:parallel: ${plan.ours} (ours) ...\n`);
      const ours = await oursRow(o, plan, help.stdout, dataFile, link);
      process.stderr.write(`bench:parallel: ${plan.torch} (torch) ...\n`);
      const torch: Side = probe.found ? await torchRow(o, plan, probe.found.python, link) : { status: 'skipped', why: probe.reason };
      rows.push({ plan, ours, torch });
    }
  } finally {
    link?.close();
    rmSync(inputs, { recursive: true, force: true });
  }
  const s = modelShape(o);
  process.stdout.write(`GPT-2 ${s.layers}L×${s.width} ${s.heads}H, context ${o.context}, global batch ${globalBatch(o)} sequences (${o.batchSize} per data-parallel rank; ` +
    `pipelines: ${o.microBatches} micro-batches), ${o.workers} processes × 1 thread${link ? ` on the ${o.links} link (RTT ${rttMs?.toFixed(2)} ms)` : ' on 127.0.0.1'}, ` +
    `${o.steps} steps (first ${o.warmup} untimed); tokens/s of the whole run, peak RSS of the largest rank\n${parallelTable(rows, !!link)}\n`);
  for (const r of rows) {
    for (const side of ['ours', 'torch'] as const) {
      const x = r[side];
      if (x.status === 'ran' && x.note) process.stdout.write(`  ${side === 'ours' ? r.plan.ours : r.plan.torch}: ${x.note}\n`);
    }
  }
  if (link) for (const side of ['ours', 'torch'] as const) process.stdout.write(`${pipelineVersusDataParallel(rows, side) ?? `${side}: pipeline vs data parallel not measured`}\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'parallel', options: o, shape: s, link: link ? { preset: o.links, rttMs } : null, rows, torch: probe.found, machine: machineInfo() })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:parallel: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
