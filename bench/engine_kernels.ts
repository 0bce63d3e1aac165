/**
 * The kernel section of bench:engine: memory bandwidth of every elementwise and optimizer kernel of
 * the native backend, one thread, beside the machine's copy bandwidth measured in the same child
 * (`TypedArray.prototype.set`, a memcpy). Buffers of N floats each (32 MB by default, 8 MB with
 * --quick): larger than the per-core caches, so every kernel streams its operands. A kernel's
 * GB/s counts the bytes it must move — each operand read once, each output written once — over
 * the median window's time; "of copy" is that against copy's GB/s, the ceiling for a streaming loop.
 *
 * Run by bench/engine.ts as `node dist/bench/engine_kernels.js --child [--quick]` under one thread.
 */
import { fileURLToPath } from 'node:url';
import { type WindowPlan, fmtNum, renderTable, runJsonChild, runWindows, scalePlan, threadEnv } from './lib/index.js';
import type { HostBackend as Backend } from '../src/tensor/backend.js';
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';

import { setBackend } from '../src/tensor/index.js';

interface KernelCase {
  name: string;
  /** Float32 operands the kernel reads + writes per element (bytes = 4 × this × N). */
  floatsMoved: number;
  run: (k: Backend, b: Buffers) => void;
}

interface Buffers {
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  d: Float32Array;
}

const ADAM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: true, step: 10 };
const SGD = { lr: 0.01, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, firstStep: false };

/** Where sumSquares leaves its value. */
const SCALAR = new Float64Array(1);

const CASES: KernelCase[] = [
  { name: 'copy (memcpy reference)', floatsMoved: 2, run: (_k, x) => x.b.set(x.a) },
  { name: 'fill', floatsMoved: 1, run: (k, x) => k.fill(x.b, 0.5) },
  { name: 'affine y = a·x + b', floatsMoved: 2, run: (k, x) => k.affine(x.a, 0.99, 0.01, x.b) },
  { name: 'axpy y += a·x', floatsMoved: 3, run: (k, x) => k.axpy(1e-3, x.a, x.b) },
  { name: 'add (same shape)', floatsMoved: 3, run: (k, x) => k.binary('add', x.a, [1], x.b, [1], x.c, [x.a.length]) },
  { name: 'mul (same shape)', floatsMoved: 3, run: (k, x) => k.binary('mul', x.a, [1], x.b, [1], x.c, [x.a.length]) },
  { name: 'relu', floatsMoved: 2, run: (k, x) => k.unary('relu', x.a, x.b) },
  { name: 'relu backward', floatsMoved: 4, run: (k, x) => k.unaryBackward('relu', x.a, x.b, x.c, x.d) },
  { name: 'exp', floatsMoved: 2, run: (k, x) => k.unary('exp', x.a, x.b) },
  { name: 'gelu (tanh)', floatsMoved: 2, run: (k, x) => k.unary('gelu', x.a, x.b) },
  { name: 'sumSquares', floatsMoved: 1, run: (k, x) => k.sumSquares(x.a, 1, SCALAR) },
  { name: 'sgdStep (momentum)', floatsMoved: 5, run: (k, x) => k.sgdStep(x.a, x.b, x.c, SGD) },
  { name: 'adamStep (AdamW)', floatsMoved: 7, run: (k, x) => k.adamStep(x.a, x.b, x.c, x.d, ADAM) },
];

const PLAN: WindowPlan = { warmupMs: 300, warmupSteps: 3, windows: 5, windowMs: 400 };

export interface KernelRow {
  name: string;
  gbPerS: number;
  spread: number;
  /** gbPerS / copy's GB/s. */
  ofCopy: number;
  cpuShare: number;
}

export interface KernelReport {
  available: boolean;
  reason?: string;
  floatsPerBuffer: number;
  flushDenormals?: boolean;
  rows: KernelRow[];
}

function child(quick: boolean): void {
  const n = quick ? 2 * 1024 * 1024 : 8 * 1024 * 1024;
  let k: Backend;
  try {
    k = hostKernels(setBackend('native'));
    k.setThreads(1);
  } catch (e) {
    console.log(JSON.stringify({ available: false, reason: (e as Error).message, floatsPerBuffer: n, rows: [] }));
    return;
  }
  // Moderate values: no overflow in exp, no subnormals, Adam's v stays positive.
  const mk = (seed: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = 0.5 + 0.25 * Math.sin(i * 0.001 + seed);
    return out;
  };
  const bufs: Buffers = { a: mk(1), b: mk(2), c: mk(3), d: mk(4) };
  const plan = quick ? scalePlan(PLAN, 0.5) : PLAN;
  const rows: KernelRow[] = [];
  let copy = NaN;
  for (const c of CASES) {
    const bytes = 4 * c.floatsMoved * n;
    const r = runWindows(() => c.run(k, bufs), bytes / 1e9, plan);
    if (Number.isNaN(copy)) copy = r.median;
    const share = r.cpuShare.slice().sort((x, y) => x - y)[r.cpuShare.length >> 1] ?? NaN;
    rows.push({ name: c.name, gbPerS: r.median, spread: r.summary.spread, ofCopy: r.median / copy, cpuShare: share });
    process.stderr.write(`[kernels] ${c.name}: ${fmtNum(r.median, 1)} GB/s\n`);
  }
  console.log(JSON.stringify({ available: true, floatsPerBuffer: n, rows } satisfies KernelReport));
}

/** Runs the kernel child under one thread and returns its report. */
export async function runKernelSection(quick: boolean): Promise<KernelReport> {
  const args = [fileURLToPath(import.meta.url), '--child', ...(quick ? ['--quick'] : [])];
  const r = await runJsonChild<KernelReport>(process.execPath, args, { env: threadEnv(1, { SMOLCLUSTER_BACKEND: 'native' }), timeoutMs: 240_000 });
  return r.value ?? { available: false, reason: r.error ?? 'no report', floatsPerBuffer: 0, rows: [] };
}

export function renderKernelSection(rep: KernelReport): string {
  if (!rep.available) return `kernels: native backend unavailable — ${rep.reason ?? 'unknown reason'}`;
  const mb = (rep.floatsPerBuffer * 4) / 2 ** 20;
  const table = renderTable(
    [{ header: 'kernel (native, 1 thread)' }, { header: 'GB/s' }, { header: 'spread' }, { header: 'of copy' }, { header: 'CPU share' }, { header: 'GB per CPU-s' }],
    rep.rows.map((r) => [
      r.name, fmtNum(r.gbPerS, 1), `±${(100 * r.spread).toFixed(0)}%`, `${(100 * r.ofCopy).toFixed(0)}%`, r.cpuShare.toFixed(2),
      fmtNum(r.gbPerS / (r.cpuShare || 1), 1),
    ]),
  );
  return `Kernel bandwidth, ${fmtNum(mb, 0)} MB per buffer (bytes moved = operands read + written once):\n${table}`;
}

if (process.argv.includes('--child')) child(process.argv.includes('--quick'));
