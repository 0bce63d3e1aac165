/**
 * bench:models — training throughput and peak memory of the issue-10 model families on one thread,
 * against the same models in PyTorch run in the same invocation (bench/reference/models_torch.py).
 *
 *   npm run bench:models [-- --only resnet18,gpt2-tiny,gpt2,bert-mini,smollm2-135m] [--steps N] [--repeats R] [--precision bf16]
 *   npm run bench:models -- --only smollm2-135m [--precision bf16] [--layers N]
 *
 * smollm2-135m is the Llama family at SmolLM2-135M's shape (30 layers × 576, 9 heads / 3 kv heads
 * of 64, SwiGLU 1536, tied head, vocab 49152), window 256, batch 4, AdamW; its PyTorch side is
 * transformers' LlamaForCausalLM (bench/reference/llama_torch.py) built from the config.json our
 * spec writes (hfConfigFromSpec), so both build the same model. `--layers N` shrinks it (a smoke run
 * of the code path, not a figure to report). Its rows add model FLOPs utilisation (MFU): tokens/s ×
 * training FLOPs per token, with
 *
 *   FLOPs per token = 6 · (matmul parameters, the lm head included) + 12 · layers · window · heads · headDim
 *
 * (bench/lib/llama_flops.ts), against this core's measured float32 GEMM peak for fp32 rows
 * (bench/lib/fp32_peak.ts) and bf16 GEMM peak for bf16 rows (bench/lib/bf16_peak.ts), each taken by a
 * child of its own on one thread.
 *
 * --precision bf16 adds, beside the float32 rows (kept), both engines in bf16 mixed precision: ours
 * with setComputePrecision('bf16') (docs/PRECISION.md), PyTorch's forward and loss under
 * torch.autocast('cpu', dtype=torch.bfloat16). Our bf16 children also time their GEMM and
 * convolution kernels (CPU time around each call: the share of the step they take, and the TFLOP/s
 * they reach), and a child of its own measures this core's bf16 GEMM peak (bench/lib/bf16_peak.ts:
 * a oneDNN bf16 matmul at 1024³ and 2048³, one thread) that those TFLOP/s are read against.
 *
 * Each engine and workload runs in a child process of its own (so each peak RSS is that workload's
 * alone): a warm-up step, then N timed training steps (zero grad, forward, loss, backward, optimizer
 * step); the figure is the median step time, reported as samples/s and tokens/s. Peak RSS is the
 * child's maxRSS at the end. The parent prints a table of ratios and one JSON line.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findPythonWith, packageRoot, threadEnv } from './lib/index.js';
import { measureBf16GemmPeak, type Bf16Peak } from './lib/bf16_peak.js';
import { measureFp32GemmPeak } from './lib/fp32_peak.js';
import { llamaTrainingFlopsPerToken } from './lib/llama_flops.js';
import { hfConfigFromSpec } from '../src/nn/interchange/hf_config.js';
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';
import { type LlamaSpec, type ModelSpec, createModel, defaultSpec, describeSpec, makeOptimizer } from '../src/nn/index.js';
import { Tensor, backend, backward, crossEntropy, lastUse, setComputePrecision, type Precision } from '../src/tensor/index.js';
import { kernelsFor } from '../src/tensor/dispatch.js';
import type { Backend, Conv2dGeometry } from '../src/tensor/backend.js';
import { BufferRecycler } from '../src/tensor/recycler.js';
import { Rng } from '../src/util/rng.js';

interface Workload { label: string; model: string; input: number[]; classes: number; batch: number; optimizer: 'sgd' | 'adamw' }
const WORKLOADS: Record<string, Workload> = {
  resnet18: { label: 'resnet18 CIFAR 3×32×32, batch 32', model: 'resnet18', input: [3, 32, 32], classes: 10, batch: 32, optimizer: 'sgd' },
  'gpt2-tiny': { label: 'gpt2-tiny ctx 128, vocab 50257, batch 8', model: 'gpt2-tiny', input: [128], classes: 50257, batch: 8, optimizer: 'adamw' },
  gpt2: { label: 'gpt2 124M ctx 128, batch 4', model: 'gpt2', input: [128], classes: 50257, batch: 4, optimizer: 'adamw' },
  'bert-mini': { label: 'bert-mini ctx 128, vocab 30522, batch 8', model: 'bert-mini', input: [128], classes: 30522, batch: 8, optimizer: 'adamw' },
  'smollm2-135m': { label: 'smollm2-135m ctx 256, vocab 49152, batch 4', model: 'smollm2-135m', input: [256], classes: 49152, batch: 4, optimizer: 'adamw' },
};
/** Workloads of the Llama family: PyTorch side from transformers, rows with MFU. */
const LLAMA_WORKLOADS = new Set(['smollm2-135m']);

/** A workload's spec; `layers` overrides a llama workload's depth (--layers, for smoke runs). */
function workloadSpec(id: string, layers?: number): ModelSpec {
  const w = WORKLOADS[id];
  if (w === undefined) throw new Error(`bench:models: --only names an unknown workload ${id} (have ${Object.keys(WORKLOADS).join(', ')})`);
  return defaultSpec(w.model as never, w.input, w.classes, LLAMA_WORKLOADS.has(id) && layers !== undefined ? { layers } : {});
}
const SEED = 1234;

interface Report {
  engine: string; workload: string; stepMs: number[]; cpuMs: number[]; samplesPerSec: number; tokensPerSec: number | null; peakRssMB: number; loss: number; detail?: string;
  /** Ours with --profile: CPU milliseconds and FLOPs per timed step in GEMM and convolution kernels. */
  matrixMs?: number; matrixFlops?: number;
}

/** CPU time and FLOPs spent in the matrix kernels (GEMM, convolution, fused attention), accumulated. */
interface MatrixProfile { ms: number; flops: number }

function convFlops(g: Conv2dGeometry): number {
  return 2 * g.batch * g.outC * g.outH * g.outW * g.inC * g.kH * g.kW;
}

/**
 * Wraps the float32 backend's matrix kernels with timers: every GEMM and convolution (float32 or
 * bf16) adds its time and FLOPs to `p`. The op layer looks each kernel up on the backend object per
 * call, so replacing the methods intercepts them all.
 */
function profileMatrixKernels(k: Backend, p: MatrixProfile): void {
  // CPU time of this (one-threaded) process across the call: on a shared machine wall time would
  // count other processes' turns as ours.
  const timed = <A extends unknown[]>(fn: (...args: A) => void, flops: (...args: A) => number) => (...args: A): void => {
    const c0 = process.cpuUsage();
    fn(...args);
    const c = process.cpuUsage(c0);
    p.ms += (c.user + c.system) / 1000;
    p.flops += flops(...args);
  };
  const gemmFlops = (_ta: boolean, _tb: boolean, M: number, N: number, K: number, ...rest: unknown[]): number => 2 * M * N * K * (rest[8] as number);
  const m = k as unknown as Record<string, (...args: never[]) => void>;
  // On the bfloat16 table these are the bf16 kernels (bf16 as a dtype); attention has no bf16 entry.
  m.gemm = timed(k.gemm.bind(k) as never, gemmFlops as never);
  m.conv2d = timed(k.conv2d.bind(k) as never, ((g: Conv2dGeometry) => convFlops(g)) as never);
  m.conv2dBackward = timed(k.conv2dBackward.bind(k) as never, ((g: Conv2dGeometry, _x: unknown, _w: unknown, _gy: unknown, gx: unknown) => convFlops(g) * (gx ? 2 : 1)) as never);
  // The fused float32 attention: four products forward and backward (q·kᵀ, p·v; and their gradients).
  m.attention = timed(k.attention.bind(k) as never, ((g: { bh: number; tq: number; tk: number; d: number; dv: number }) => 2 * g.bh * g.tq * g.tk * (g.d + g.dv)) as never);
  m.attentionBackward = timed(k.attentionBackward.bind(k) as never, ((g: { bh: number; tq: number; tk: number; d: number; dv: number }) => 4 * g.bh * g.tq * g.tk * (g.d + g.dv)) as never);
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Child: one workload on our engine, one thread. */
function worker(id: string, steps: number, precision: Precision, profile: boolean, layers?: number): void {
  backend().setThreads(1);
  setComputePrecision(precision);
  const matrix: MatrixProfile = { ms: 0, flops: 0 };
  const w = WORKLOADS[id];
  const spec = workloadSpec(id, layers);
  const model = createModel(spec, SEED);
  const opt = makeOptimizer(model.arena(), w.optimizer === 'sgd' ? { name: 'sgd', lr: 0.01, momentum: 0.9 } : { name: 'adamw', lr: 1e-4 });
  const rng = new Rng(SEED);
  const tokens = w.input.length === 1;
  const per = w.input.reduce((a, b) => a * b, 1);
  const x = new Float32Array(w.batch * per);
  for (let i = 0; i < x.length; i++) x[i] = tokens ? rng.int(w.classes) : rng.normal();
  const labels = Int32Array.from({ length: tokens ? w.batch * per : w.batch }, () => rng.int(w.classes));
  const times: number[] = [];
  const cpu: number[] = [];
  let loss = NaN;
  if (profile) {
    profileMatrixKernels(kernelsFor({ device: 'cpu', dtype: 'float32' }), matrix);
    profileMatrixKernels(kernelsFor({ device: 'cpu', dtype: 'bfloat16' }), matrix);
  }
  let warmMatrix: MatrixProfile = { ms: 0, flops: 0 };
  // Each step's buffers are reused from the step before, as `train` does (forwardBackward).
  const recycler = new BufferRecycler();
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    model.zeroGrad();
    loss = recycler.run(() => {
      // As train does (trainingLoss): the logits are handed over to the loss.
      const l = crossEntropy(lastUse(model.forward(Tensor.fromHost(x, [w.batch, ...w.input]))), labels);
      backward(l);
      return l.item();
    });
    opt.step();
    const c = process.cpuUsage(c0);
    if (s === 0) warmMatrix = { ...matrix };
    if (s > 0) {
      times.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
  }
  const ms = median(times);
  const r: Report = {
    engine: 'smolcluster', workload: id, stepMs: times, cpuMs: cpu, samplesPerSec: (1000 * w.batch) / ms,
    tokensPerSec: tokens ? (1000 * w.batch * w.input[0]) / ms : null, peakRssMB: process.resourceUsage().maxRSS / 1024, loss,
    detail: `${describeSpec(spec)}, ${precision}`,
    ...(profile ? { matrixMs: (matrix.ms - warmMatrix.ms) / steps, matrixFlops: (matrix.flops - warmMatrix.flops) / steps } : {}),
  };
  console.log(JSON.stringify(r));
}

/** Child: this core's bf16 or float32 GEMM peak on our engine, one thread. */
function peakWorker(precision: Precision): void {
  backend().setThreads(1);
  const k = hostKernels(backend());
  console.log(JSON.stringify({ backend: backend().name, ...(precision === 'bf16' ? measureBf16GemmPeak(k) : measureFp32GemmPeak(k)) }));
}

function runChild(cmd: string, args: string[]): Report | string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: threadEnv(1), maxBuffer: 1 << 24, timeout: 30 * 60_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Report;
  } catch {
    return `exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`;
  }
}

/** Throughput of a report in its natural unit (tokens/s for token models, else samples/s). */
function throughput(r: Report): number {
  return r.tokensPerSec ?? r.samplesPerSec;
}

/**
 * Runs every workload `repeats` times, ours and PyTorch's back to back, alternating which goes
 * first, so both sides see the same machine; each side's figure is the median over the repeats,
 * with the range of the per-repeat ratios shown (windows that disagree are visible, not averaged away).
 */
function parent(ids: string[], steps: number, repeats: number, precision: Precision, layers?: number): void {
  const root = packageRoot(import.meta.url);
  const self = fileURLToPath(import.meta.url);
  const torch = findPythonWith('torch').found;
  // The llama rows' reference is transformers' LlamaForCausalLM, so that row needs transformers too.
  const transformers = ids.some((id) => LLAMA_WORKLOADS.has(id)) ? findPythonWith('transformers').found : null;
  const precisions: Precision[] = precision === 'bf16' ? ['fp32', 'bf16'] : ['fp32'];
  const llama = ids.some((id) => LLAMA_WORKLOADS.has(id));
  const peaks: Record<Precision, GemmPeakReport | string | null> = {
    fp32: llama ? runPeak(self, 'fp32') : null,
    bf16: precision === 'bf16' ? runPeak(self, 'bf16') : null,
  };
  const depth = layers !== undefined ? ['--layers', String(layers)] : [];
  const all: Record<Precision, Record<string, { ours: Array<Report | string>; torch: Array<Report | string> }>> = { fp32: {}, bf16: {} };
  for (const p of precisions) {
    const profile = p === 'bf16' ? ['--profile'] : [];
    const runOurs = (id: string): Report | string => runChild(process.execPath, ['--max-old-space-size=8192', self, '--worker', id, '--steps', String(steps), '--precision', p, ...profile, ...depth]);
    const runTorch = (id: string): Report | string => {
      const common = ['--id', id, '--steps', String(steps), '--seed', String(SEED), '--precision', p];
      if (LLAMA_WORKLOADS.has(id)) {
        if (!transformers) return 'no python with transformers';
        const w = WORKLOADS[id];
        const config = JSON.stringify(hfConfigFromSpec(workloadSpec(id, layers)));
        return runChild(transformers.python, [join(root, 'bench', 'reference', 'llama_torch.py'), '--config', config, '--batch', String(w.batch), '--context', String(w.input[0]), ...common]);
      }
      return torch
        ? runChild(torch.python, [join(root, 'bench', 'reference', 'models_torch.py'), '--workload', JSON.stringify(WORKLOADS[id]), ...common])
        : 'no python with torch';
    };
    all[p] = runRepeats(ids, repeats, runOurs, runTorch);
    printTable(ids, steps, repeats, p, torch?.version ?? 'absent', all[p]);
  }
  if (precision === 'bf16') printBf16Summary(ids, all, peaks.bf16!);
  const mfu = llama ? printMfu(ids.filter((id) => LLAMA_WORKLOADS.has(id)), precisions, all, peaks, layers) : undefined;
  console.log(JSON.stringify({
    bench: 'models', steps, repeats, precision, ...(layers !== undefined ? { layers } : {}), rows: all.fp32,
    ...(precision === 'bf16' ? { bf16Rows: all.bf16, bf16Peak: peaks.bf16 } : {}), ...(llama ? { fp32Peak: peaks.fp32, mfu } : {}),
  }));
}

type GemmPeakReport = Bf16Peak & { backend: string };

/** A GEMM peak (bf16 or float32) from a child of its own (one thread), or why there is none. */
function runPeak(self: string, precision: Precision): GemmPeakReport | string {
  const r = spawnSync(process.execPath, [self, '--peak', precision], { encoding: 'utf8', env: threadEnv(1), maxBuffer: 1 << 20, timeout: 5 * 60_000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as GemmPeakReport;
  } catch {
    return `exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`;
  }
}

type Rows = Record<string, { ours: Array<Report | string>; torch: Array<Report | string> }>;

function runRepeats(ids: string[], repeats: number, runOurs: (id: string) => Report | string, runTorch: (id: string) => Report | string): Rows {
  const rows: Record<string, { ours: Array<Report | string>; torch: Array<Report | string> }> = {};
  for (let r = 0; r < repeats; r++) {
    for (const id of ids) {
      const row = (rows[id] ??= { ours: [], torch: [] });
      if (r % 2 === 0) {
        row.ours.push(runOurs(id));
        row.torch.push(runTorch(id));
      } else {
        row.torch.push(runTorch(id));
        row.ours.push(runOurs(id));
      }
    }
  }
  return rows;
}

const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2));

function printTable(ids: string[], steps: number, repeats: number, precision: Precision, torchVersion: string, rows: Rows): void {
  const mode = precision === 'bf16' ? 'bf16 mixed precision (ours: --precision bf16; PyTorch: autocast bfloat16)' : 'float32';
  console.log(`\nbench:models — ${mode}, one thread, ${steps} timed steps after one warm-up (median step), ${repeats} alternating repeat(s); torch ${torchVersion}`);
  console.log('| workload | smolcluster | PyTorch | throughput ratio (per-repeat range) | CPU time per step, PyTorch / smolcluster | peak RSS smolcluster / PyTorch | memory ratio |');
  console.log('|---|---|---|---|---|---|---|');
  for (const id of ids) {
    const { ours, torch: t } = rows[id];
    const failed = [...ours, ...t].find((x): x is string => typeof x === 'string');
    if (failed !== undefined) {
      console.log(`| ${WORKLOADS[id].label} | ${ours.map((x) => (typeof x === 'string' ? x : fmt(throughput(x)))).join(', ')} | ${t.map((x) => (typeof x === 'string' ? x : fmt(throughput(x)))).join(', ')} | – | – | – | – |`);
      continue;
    }
    const o = ours as Report[];
    const p = t as Report[];
    const unit = o[0].tokensPerSec !== null ? 'tokens/s' : 'samples/s';
    const a = median(o.map(throughput));
    const b = median(p.map(throughput));
    const ratios = o.map((x, i) => throughput(x) / throughput(p[i]));
    const range = repeats > 1 ? ` (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '';
    // CPU time per step (one thread): what other load on the machine inflates least.
    const cpuA = median(o.flatMap((x) => x.cpuMs));
    const cpuB = median(p.flatMap((x) => x.cpuMs));
    const rssA = Math.max(...o.map((x) => x.peakRssMB));
    const rssB = Math.max(...p.map((x) => x.peakRssMB));
    console.log(`| ${WORKLOADS[id].label} | ${fmt(a)} ${unit} | ${fmt(b)} ${unit} | ${(a / b).toFixed(2)}×${range} | ${cpuB.toFixed(0)} / ${cpuA.toFixed(0)} ms = ${(cpuB / cpuA).toFixed(2)}× | ${rssA.toFixed(0)} / ${rssB.toFixed(0)} MB | ${(rssA / rssB).toFixed(2)}× |`);
  }
}

/** Ours in bf16 against ours in fp32 and PyTorch's autocast; where the bf16 step's time goes. */
function printBf16Summary(ids: string[], all: Record<Precision, Rows>, peak: GemmPeakReport | string): void {
  const peakGflops = typeof peak === 'string' ? NaN : peak.gflops;
  const peakLine = typeof peak === 'string'
    ? `not measured (${peak})`
    : `${(peak.gflops / 1000).toFixed(3)} TFLOP/s at ${peak.shape} (${Object.entries(peak.byShape).map(([s, g]) => `${s} ${g.toFixed(0)}`).join(', ')} GFLOP/s; ${peak.backend} backend, one thread)`;
  console.log('\nbf16 summary (medians over the repeats)');
  console.log(`this core's bf16 GEMM peak (oneDNN matmul, bf16 operands, float32 accumulation): ${peakLine}`);
  console.log('| workload | ours bf16 / PyTorch bf16 (wall; CPU time) | ours bf16 / ours fp32 (wall; CPU time) | peak RSS ours bf16 / ours fp32 | GEMM+conv share of our bf16 step (CPU time) | their TFLOP/s (CPU time) | against the bf16 GEMM peak |');
  console.log('|---|---|---|---|---|---|---|');
  const ok = (xs: Array<Report | string>): Report[] | null => (xs.every((x) => typeof x !== 'string') ? (xs as Report[]) : null);
  for (const id of ids) {
    const [o16, t16, o32] = [ok(all.bf16[id].ours), ok(all.bf16[id].torch), ok(all.fp32[id].ours)];
    if (!o16 || !o32) {
      console.log(`| ${WORKLOADS[id].label} | – | – | – | – | – | – |`);
      continue;
    }
    const a = median(o16.map(throughput));
    const cpu = (rs: Report[]): number => median(rs.flatMap((x) => x.cpuMs));
    const vsTorch = t16 ? `${(a / median(t16.map(throughput))).toFixed(2)}×; ${(cpu(t16) / cpu(o16)).toFixed(2)}×` : '–';
    const rss = Math.max(...o16.map((x) => x.peakRssMB)) / Math.max(...o32.map((x) => x.peakRssMB));
    const stepMs = median(o16.flatMap((x) => x.cpuMs));
    const matrixMs = median(o16.map((x) => x.matrixMs ?? NaN));
    const flops = median(o16.map((x) => x.matrixFlops ?? NaN));
    console.log(`| ${WORKLOADS[id].label} | ${vsTorch} | ${(a / median(o32.map(throughput))).toFixed(2)}×; ${(cpu(o32) / cpu(o16)).toFixed(2)}× | ${rss.toFixed(2)}× | ${(100 * matrixMs / stepMs).toFixed(0)} % (${matrixMs.toFixed(0)} of ${stepMs.toFixed(0)} ms) | ${(flops / matrixMs / 1e9).toFixed(2)} | ${(100 * (flops / matrixMs / 1e6) / peakGflops).toFixed(0)} % |`);
  }
}

interface MfuRow { workload: string; precision: Precision; flopsPerToken: number; peakGflops: number | null; ours: number | null; torch: number | null }

/**
 * Model FLOPs utilisation of the llama rows: median tokens/s × training FLOPs per token, against the
 * GEMM peak of the row's precision (float32 rows against the fp32 peak, bf16 rows against the bf16 peak).
 */
function printMfu(ids: string[], precisions: Precision[], all: Record<Precision, Rows>, peaks: Record<Precision, GemmPeakReport | string | null>, layers?: number): MfuRow[] {
  const peakLine = (p: Precision): string => {
    const k = peaks[p];
    if (k === null) return 'not measured';
    return typeof k === 'string' ? `not measured (${k})` : `${k.gflops.toFixed(1)} GFLOP/s at ${k.shape} (${k.backend} backend)`;
  };
  console.log('\nModel FLOPs utilisation (FLOPs per token = 6 · matmul parameters incl. the lm head + 12 · layers · window · heads · headDim)');
  for (const p of precisions) console.log(`this core's ${p} GEMM peak (one thread): ${peakLine(p)}`);
  console.log('| workload | precision | FLOPs per token | smolcluster tokens/s | smolcluster MFU | PyTorch tokens/s | PyTorch MFU |');
  console.log('|---|---|---|---|---|---|---|');
  const rows: MfuRow[] = [];
  for (const id of ids) {
    const spec = workloadSpec(id, layers) as LlamaSpec;
    const flopsPerToken = llamaTrainingFlopsPerToken(spec, WORKLOADS[id].input[0]);
    for (const p of precisions) {
      const peak = peaks[p];
      const peakGflops = peak !== null && typeof peak !== 'string' ? peak.gflops : null;
      const tps = (xs: Array<Report | string>): number | null => (xs.length > 0 && xs.every((x) => typeof x !== 'string') ? median((xs as Report[]).map(throughput)) : null);
      const [ours, torch] = [tps(all[p][id].ours), tps(all[p][id].torch)];
      const mfu = (t: number | null): string => (t === null || peakGflops === null ? '–' : `${((100 * t * flopsPerToken) / (peakGflops * 1e9)).toFixed(1)} %`);
      const label = layers !== undefined ? `${WORKLOADS[id].label}, ${layers} layer(s) (smoke)` : WORKLOADS[id].label;
      console.log(`| ${label} | ${p} | ${(flopsPerToken / 1e6).toFixed(1)} M | ${ours === null ? '–' : fmt(ours)} | ${mfu(ours)} | ${torch === null ? '–' : fmt(torch)} | ${mfu(torch)} |`);
      rows.push({ workload: id, precision: p, flopsPerToken, peakGflops, ours, torch });
    }
  }
  return rows;
}

const { values } = parseArgs({
  options: {
    worker: { type: 'string' }, only: { type: 'string' }, steps: { type: 'string' }, repeats: { type: 'string' },
    precision: { type: 'string' }, profile: { type: 'boolean' }, peak: { type: 'string' }, layers: { type: 'string' },
  },
});
const steps = Number(values.steps ?? 3);
const precision = values.precision ?? 'fp32';
if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`bench:models: --precision must be fp32 or bf16, got ${precision}`);
const layers = values.layers === undefined ? undefined : Number(values.layers);
if (layers !== undefined && !(Number.isInteger(layers) && layers > 0)) throw new Error(`bench:models: --layers must be a positive integer, got ${values.layers}`);
if (values.peak !== undefined) peakWorker(values.peak === 'bf16' ? 'bf16' : 'fp32');
else if (values.worker) worker(values.worker, steps, precision, values.profile ?? false, layers);
else parent(values.only ? values.only.split(',') : Object.keys(WORKLOADS), steps, Number(values.repeats ?? 1), precision, layers);
