/**
 * bench:models — training throughput and peak memory of the issue-10 model families on one thread,
 * against the same models in PyTorch run in the same invocation (bench/reference/models_torch.py).
 *
 *   npm run bench:models [-- --only resnet18,gpt2-tiny,gpt2,bert-mini] [--steps N] [--repeats R]
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
import { type ModelSpec, createModel, defaultSpec, describeSpec, makeOptimizer } from '../src/nn/index.js';
import { Tensor, backend, backward, crossEntropy } from '../src/tensor/index.js';
import { BufferRecycler } from '../src/tensor/recycler.js';
import { Rng } from '../src/util/rng.js';

interface Workload { label: string; model: string; input: number[]; classes: number; batch: number; optimizer: 'sgd' | 'adamw' }
const WORKLOADS: Record<string, Workload> = {
  resnet18: { label: 'resnet18 CIFAR 3×32×32, batch 32', model: 'resnet18', input: [3, 32, 32], classes: 10, batch: 32, optimizer: 'sgd' },
  'gpt2-tiny': { label: 'gpt2-tiny ctx 128, vocab 50257, batch 8', model: 'gpt2-tiny', input: [128], classes: 50257, batch: 8, optimizer: 'adamw' },
  gpt2: { label: 'gpt2 124M ctx 128, batch 4', model: 'gpt2', input: [128], classes: 50257, batch: 4, optimizer: 'adamw' },
  'bert-mini': { label: 'bert-mini ctx 128, vocab 30522, batch 8', model: 'bert-mini', input: [128], classes: 30522, batch: 8, optimizer: 'adamw' },
};
const SEED = 1234;

interface Report { engine: string; workload: string; stepMs: number[]; cpuMs: number[]; samplesPerSec: number; tokensPerSec: number | null; peakRssMB: number; loss: number; detail?: string }

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Child: one workload on our engine, one thread. */
function worker(id: string, steps: number): void {
  backend().setThreads(1);
  const w = WORKLOADS[id];
  const spec: ModelSpec = defaultSpec(w.model as never, w.input, w.classes);
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
  // Each step's buffers are reused from the step before, as `train` does (forwardBackward).
  const recycler = new BufferRecycler();
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    model.zeroGrad();
    loss = recycler.run(() => {
      const l = crossEntropy(model.forward(Tensor.fromHost(x, [w.batch, ...w.input])), labels);
      backward(l);
      return l.item();
    });
    opt.step();
    const c = process.cpuUsage(c0);
    if (s > 0) {
      times.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
  }
  const ms = median(times);
  const r: Report = {
    engine: 'smolcluster', workload: id, stepMs: times, cpuMs: cpu, samplesPerSec: (1000 * w.batch) / ms,
    tokensPerSec: tokens ? (1000 * w.batch * w.input[0]) / ms : null, peakRssMB: process.resourceUsage().maxRSS / 1024, loss,
    detail: describeSpec(spec),
  };
  console.log(JSON.stringify(r));
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
function parent(ids: string[], steps: number, repeats: number): void {
  const root = packageRoot(import.meta.url);
  const self = fileURLToPath(import.meta.url);
  const torch = findPythonWith('torch').found;
  const runOurs = (id: string): Report | string => runChild(process.execPath, ['--max-old-space-size=8192', self, '--worker', id, '--steps', String(steps)]);
  const runTorch = (id: string): Report | string => torch
    ? runChild(torch.python, [join(root, 'bench', 'reference', 'models_torch.py'), '--workload', JSON.stringify(WORKLOADS[id]), '--id', id, '--steps', String(steps), '--seed', String(SEED)])
    : 'no python with torch';
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
  const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2));
  console.log(`bench:models — one thread, ${steps} timed steps after one warm-up (median step), ${repeats} alternating repeat(s); torch ${torch?.version ?? 'absent'}`);
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
  console.log(JSON.stringify({ bench: 'models', steps, repeats, rows }));
}

const { values } = parseArgs({ options: { worker: { type: 'string' }, only: { type: 'string' }, steps: { type: 'string' }, repeats: { type: 'string' } } });
const steps = Number(values.steps ?? 3);
if (values.worker) worker(values.worker, steps);
else parent(values.only ? values.only.split(',') : Object.keys(WORKLOADS), steps, Number(values.repeats ?? 1));
