/**
 * bench:gpu-models — issue 21 §5 in one command: on this machine's GPU, beside PyTorch on the same
 * GPU (CUDA, else MPS; bench/reference/gpu_models_torch.py):
 *   - the GPU's fp32 peak, measured by an FMA-throughput probe (bench/lib/fma_peak.ts);
 *   - GEMM GFLOP/s at 1024³ and 4096³ (our two WGSL kernels and `auto`) and torch.matmul's, each
 *     as a share of that peak;
 *   - training throughput (`--device gpu`: the arena on the GPU) of the MNIST MLP 784-128-10 and the
 *     MNIST CNN at batch 32 (train's defaults, SGD with momentum), resnet18 CIFAR batch 32 (SGD),
 *     gpt2-tiny ctx 128 batch 8 and GPT-2 124M ctx 128 batch 4 (AdamW), ours / PyTorch fp32;
 * then the ratios against the issue's targets and one JSON line.
 *
 * Each side of each workload runs in a child process of its own: warm-up steps, then N timed steps
 * (zero grad, forward, loss, backward, optimizer step, the loss read on the host — which waits for
 * the GPU, on both sides); the figure is the median step. GPT-2 runs without dropout on both sides
 * (the torch reference has none). PyTorch runs strict fp32 (TF32 off).
 *
 * On a software adapter (SwiftShader) every size is shrunk and the figures only show that the
 * bench runs end to end; no verdict is given.
 *
 *   npm run bench:gpu-models [-- --only mlp,cnn,resnet18,gpt2-tiny,gpt2] [--steps N] [--warmup W] [--skip-matmul]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findPythonWith, packageRoot } from './lib/index.js';
import { measureFp32Peak, type Fp32Peak } from './lib/fma_peak.js';
import { GEMM_PEAK_TARGET, THROUGHPUT_TARGETS, cell, ratioOf, readChildAnswer, verdict, type ChildAnswer } from './lib/gpu_targets.js';
import { type ModelSpec, createModel, defaultSpec, describeSpec, makeOptimizer } from '../src/nn/index.js';
import { closeWebGpu, loadWebGpuBackend, type GemmKernelChoice } from '../src/tensor/backends/webgpu/index.js';
import { Tensor, backward, crossEntropy } from '../src/tensor/index.js';
import { BufferRecycler } from '../src/tensor/recycler.js';
import { measureGemm } from '../src/train/engine/device.js';
import { Rng } from '../src/util/rng.js';

interface Workload { id: string; label: string; spec: ModelSpec; input: number[]; classes: number; batch: number; optimizer: 'sgd' | 'adamw' }

const SEED = 1234;
const IDS = ['mlp', 'cnn', 'resnet18', 'gpt2-tiny', 'gpt2'] as const;

/** The workloads at the issue's sizes, or shrunk for a software adapter (same families, same code paths). */
function workloads(software: boolean): Workload[] {
  const w = (id: string, label: string, spec: ModelSpec, input: number[], classes: number, batch: number, optimizer: 'sgd' | 'adamw'): Workload => ({ id, label, spec, input, classes, batch, optimizer });
  const noDropout = (s: ModelSpec): ModelSpec => (s.type === 'gpt2' ? { ...s, dropout: 0 } : s);
  if (!software) {
    return [
      w('mlp', 'MNIST MLP 784-128-10, batch 32', defaultSpec('mlp', [1, 28, 28], 10), [1, 28, 28], 10, 32, 'sgd'),
      w('cnn', 'MNIST CNN 1×28×28, batch 32', defaultSpec('cnn', [1, 28, 28], 10), [1, 28, 28], 10, 32, 'sgd'),
      w('resnet18', 'resnet18 CIFAR 3×32×32, batch 32', defaultSpec('resnet18', [3, 32, 32], 10), [3, 32, 32], 10, 32, 'sgd'),
      w('gpt2-tiny', 'gpt2-tiny ctx 128, vocab 50257, batch 8', noDropout(defaultSpec('gpt2-tiny', [128], 50257)), [128], 50257, 8, 'adamw'),
      w('gpt2', 'GPT-2 124M ctx 128, batch 4', noDropout(defaultSpec('gpt2', [128], 50257)), [128], 50257, 4, 'adamw'),
    ];
  }
  return [
    w('mlp', 'MNIST MLP 784-128-10, batch 32', defaultSpec('mlp', [1, 28, 28], 10), [1, 28, 28], 10, 32, 'sgd'),
    w('cnn', 'shrunk: MNIST CNN 1×12×12, batch 2', defaultSpec('cnn', [1, 12, 12], 10), [1, 12, 12], 10, 2, 'sgd'),
    w('resnet18', 'shrunk: resnet18 width 4, 3×16×16, batch 2', defaultSpec('resnet18', [3, 16, 16], 10, { width: 4 }), [3, 16, 16], 10, 2, 'sgd'),
    w('gpt2-tiny', 'shrunk: gpt2-tiny ctx 32, vocab 512, batch 2', noDropout(defaultSpec('gpt2-tiny', [32], 512)), [32], 512, 2, 'adamw'),
    w('gpt2', 'shrunk: gpt2 1 layer, width 64, ctx 32, vocab 512, batch 2', noDropout(defaultSpec('gpt2', [32], 512, { layers: 1, width: 64, heads: 2, context: 32 })), [32], 512, 2, 'adamw'),
  ];
}

interface StepReport { stepMs: number[]; samplesPerSec: number; tokensPerSec: number | null; loss: number; params: number; device?: string; detail?: string }
interface TorchMatmul { device: string; version: string; gflops: Record<string, number> }
interface Probe {
  adapter: string; software: boolean;
  /** The probe's figure, or why it failed (the rest of the bench still runs). */
  peak: Fp32Peak | string;
  gemm: Array<{ n: number; reps: number; byKernel: Record<GemmKernelChoice, number> } | { n: number; reps: number; failed: string }>;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function openGpu(): Promise<NonNullable<Awaited<ReturnType<typeof loadWebGpuBackend>>['backend']> & { software: boolean; name: string }> {
  const load = await loadWebGpuBackend();
  if (!load.backend || !load.adapter) throw new Error(`bench:gpu-models: ${load.reason}`);
  return Object.assign(load.backend, { software: load.adapter.software, name: load.backend.adapterName });
}

/** Child: the fp32 peak probe and our GEMM at the sizes the adapter warrants. */
async function probeChild(): Promise<void> {
  const gpu = await openGpu();
  const why = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0];
  const peak = await measureFp32Peak(gpu.stream, gpu.software ? { invocations: 4096, turns: 16, reps: 2 } : { invocations: 1 << 22, turns: 1024, reps: 10 }).catch(why);
  const gemm: Probe['gemm'] = [];
  for (const [n, reps] of gpu.software ? [[128, 2]] : [[1024, 50], [4096, 10]]) {
    try {
      const byKernel = {} as Record<GemmKernelChoice, number>;
      for (const k of ['tiled64', 'blocked128', 'auto'] as GemmKernelChoice[]) {
        gpu.gemmKernel = k;
        byKernel[k] = await measureGemm(gpu, n, reps);
      }
      gemm.push({ n, reps, byKernel });
    } catch (e) {
      gemm.push({ n, reps, failed: why(e) });
    } finally {
      gpu.gemmKernel = 'auto';
    }
  }
  closeWebGpu();
  const p: Probe = { adapter: gpu.name, software: gpu.software, peak, gemm };
  console.log(JSON.stringify(p));
}

/** Child: N timed training steps of one workload with the arena on the GPU, as train's loop runs them. */
async function workerChild(w: Workload, steps: number, warmup: number): Promise<void> {
  const gpu = await openGpu();
  const model = createModel(w.spec, SEED).to('webgpu');
  const opt = makeOptimizer(model.arena(), w.optimizer === 'sgd' ? { name: 'sgd', lr: 0.01, momentum: 0.9 } : { name: 'adamw', lr: 1e-4 });
  const rng = new Rng(SEED);
  const tokens = w.input.length === 1;
  const per = w.input.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: w.batch * per }, () => (tokens ? rng.int(w.classes) : rng.normal()));
  // Token ids stay a host tensor (the embedding uploads them, as train does); images live on the GPU.
  const x = tokens ? Tensor.from(values, [w.batch, ...w.input]) : Tensor.from(values, [w.batch, ...w.input], 'float32', 'webgpu');
  const labels = Int32Array.from({ length: tokens ? w.batch * per : w.batch }, () => rng.int(w.classes));
  const recycler = new BufferRecycler();
  const times: number[] = [];
  let loss = NaN;
  for (let s = 0; s < warmup + steps; s++) {
    const t0 = performance.now();
    model.zeroGrad();
    // As forwardBackward (src/train/loop/micro_batches.ts): the step's buffers come from the recycler,
    // the loss read is recorded behind the backward, then the optimizer step.
    const read = recycler.run(() => {
      const l = crossEntropy(model.forward(x), labels);
      backward(l);
      return l.read();
    });
    loss = (await read)[0];
    opt.step();
    if (s >= warmup) times.push(performance.now() - t0);
  }
  await gpu.stream.finish();
  closeWebGpu();
  const ms = median(times);
  const r: StepReport = {
    stepMs: times, samplesPerSec: (1000 * w.batch) / ms, tokensPerSec: tokens ? (1000 * w.batch * w.input[0]) / ms : null,
    loss, params: model.arena().params.size, device: gpu.name, detail: describeSpec(w.spec),
  };
  console.log(JSON.stringify(r));
}

function run<R>(cmd: string, args: string[], timeoutMs: number): ChildAnswer<R> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24, timeout: timeoutMs });
  if (r.error) return { failed: r.error.message };
  const answer = readChildAnswer<R>(r.stdout, r.stderr, r.status);
  return 'ok' in answer && r.status !== 0 ? { failed: `exit ${r.status}` } : answer;
}

/** Both sides' parameter counts: one figure when they agree (the same model), both when not. */
function sameModel(ours: ChildAnswer<StepReport>, theirs: ChildAnswer<StepReport>): string {
  const a = 'ok' in ours ? ours.ok.params : null;
  const b = 'ok' in theirs ? theirs.ok.params : null;
  if (a !== null && b !== null) return a === b ? `${a} (both)` : `DIFFER: ours ${a}, torch ${b}`;
  return `${a ?? '–'} ours`;
}

const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2));
const throughput = (r: StepReport): number => r.tokensPerSec ?? r.samplesPerSec;

async function parent(only: string[], steps: number | undefined, warmup: number | undefined, skipMatmul: boolean): Promise<void> {
  const root = packageRoot(import.meta.url);
  const self = fileURLToPath(import.meta.url);
  const script = join(root, 'bench', 'reference', 'gpu_models_torch.py');
  const torch = findPythonWith('torch');
  const torchRun = <R>(args: string[], timeoutMs: number): ChildAnswer<R> => (torch.found ? run<R>(torch.found.python, [script, ...args], timeoutMs) : { noGpu: torch.reason });
  const started = new Date().toISOString();

  const probe = run<Probe>(process.execPath, [self, '--probe'], 10 * 60_000);
  if (!('ok' in probe)) {
    console.error(`bench:gpu-models: no GPU to measure: ${cell(probe, () => '')}`);
    process.exitCode = 1;
    return;
  }
  const { adapter, software, peak, gemm } = probe.ok;
  const nSteps = steps ?? (software ? 2 : 30);
  const nWarm = warmup ?? (software ? 1 : 5);
  console.log(`\nbench:gpu-models — ${adapter} (${software ? 'SOFTWARE adapter: shrunk sizes, the figures only show that the bench runs' : 'hardware'}), ${started}`);
  console.log(`PyTorch: ${torch.found ? `${torch.found.version} (${torch.found.python})` : torch.reason}`);
  const peakGflops = typeof peak === 'string' ? NaN : peak.gflops;
  console.log(typeof peak === 'string' ? `fp32 peak: the FMA probe failed: ${peak}` : `fp32 peak (FMA probe, ${peak.invocations} invocations × ${peak.turns} turns × ${peak.reps} reps): ${fmt(peak.gflops)} GFLOP/s`);

  const matmul = skipMatmul ? null : torchRun<TorchMatmul>(['--matmul', JSON.stringify(gemm.map((g) => [g.n, g.reps]))], 10 * 60_000);
  // A share of a peak that was not measured prints NaN and gets 'not measured' as its verdict.
  console.log('\n| GEMM | tiled64 | blocked128 | auto | auto / fp32 peak | torch.matmul | torch / fp32 peak | ours auto / torch | target |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const g of gemm) {
    if ('failed' in g) {
      console.log(`| ${g.n}³ | failed: ${g.failed} | | | | | | | |`);
      continue;
    }
    const t = matmul && 'ok' in matmul ? matmul.ok.gflops[String(g.n)] ?? null : null;
    const torchCell = matmul === null ? 'skipped' : t !== null ? `${fmt(t)} GFLOP/s` : cell(matmul, () => '');
    const share = g.byKernel.auto / peakGflops;
    const target = g.n === GEMM_PEAK_TARGET.n ? GEMM_PEAK_TARGET.share : undefined;
    console.log(`| ${g.n}³ | ${fmt(g.byKernel.tiled64)} | ${fmt(g.byKernel.blocked128)} | ${fmt(g.byKernel.auto)} GFLOP/s | ${(100 * share).toFixed(1)} % | ${torchCell} | ${t !== null ? `${(100 * t / peakGflops).toFixed(1)} %` : '–'} | ${t !== null ? `${(g.byKernel.auto / t).toFixed(2)}×` : '–'} | ${verdict(share, target, software)} |`);
  }

  const rows: Array<{ id: string; label: string; ours: ChildAnswer<StepReport>; torch: ChildAnswer<StepReport>; ratio: number | null; verdict: string }> = [];
  console.log(`\n| workload (${nSteps} timed steps after ${nWarm} warm-up, median step) | parameters | ours --device gpu | PyTorch fp32 | ours / PyTorch | target |`);
  console.log('|---|---|---|---|---|---|');
  for (const w of workloads(software).filter((x) => only.includes(x.id))) {
    const unit = w.input.length === 1 ? 'tokens/s' : 'samples/s';
    const ours = run<StepReport>(process.execPath, ['--max-old-space-size=8192', self, '--worker', w.id, '--software', String(software), '--steps', String(nSteps), '--warmup', String(nWarm)], 10 * 60_000);
    const theirs = torchRun<StepReport>(['--workload', JSON.stringify(w), '--steps', String(nSteps), '--warmup', String(nWarm), '--seed', String(SEED)], 10 * 60_000);
    const ratio = ratioOf(ours, theirs, throughput);
    const v = verdict(ratio, THROUGHPUT_TARGETS[w.id], software);
    rows.push({ id: w.id, label: w.label, ours, torch: theirs, ratio, verdict: v });
    console.log(`| ${w.label} | ${sameModel(ours, theirs)} | ${cell(ours, (r) => `${fmt(throughput(r))} ${unit}`)} | ${cell(theirs, (r) => `${fmt(throughput(r))} ${unit}`)} | ${ratio === null ? '–' : `${ratio.toFixed(2)}×`} | ${v} |`);
  }
  console.log(JSON.stringify({ bench: 'gpu-models', started, adapter, software, torch: torch.found?.version ?? null, peak, gemm, torchMatmul: matmul, rows }));
}

const { values } = parseArgs({
  options: {
    probe: { type: 'boolean' }, worker: { type: 'string' }, software: { type: 'string' }, only: { type: 'string' },
    steps: { type: 'string' }, warmup: { type: 'string' }, 'skip-matmul': { type: 'boolean' },
  },
});
const count = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < (name === 'warmup' ? 0 : 1)) throw new Error(`bench:gpu-models: --${name} must be a ${name === 'warmup' ? 'non-negative' : 'positive'} integer, got ${v}`);
  return n;
};
if (values.probe) await probeChild();
else if (values.worker) {
  const w = workloads(values.software === 'true').find((x) => x.id === values.worker);
  if (!w) throw new Error(`bench:gpu-models: no workload ${values.worker}; known: ${IDS.join(', ')}`);
  await workerChild(w, count('steps', values.steps) ?? 2, count('warmup', values.warmup) ?? 1);
} else {
  const only = values.only ? values.only.split(',') : [...IDS];
  const unknown = only.filter((id) => !(IDS as readonly string[]).includes(id));
  if (unknown.length) throw new Error(`bench:gpu-models: --only ${unknown.join(',')}: no such workload; known: ${IDS.join(', ')}`);
  await parent(only, count('steps', values.steps), count('warmup', values.warmup), values['skip-matmul'] ?? false);
}
