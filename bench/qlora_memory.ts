/**
 * npm run bench:qlora-memory -- [--shape llama-3.1-8b|smollm2-135m] [--layers N] [--format q4_0|q4_k] [--context 512]
 *                               [--rank 16] [--steps 2] [--threads 2] [--stages 1|2] [--dir DIR] [--keep]
 *
 * Issue 46 §3: the peak resident memory of one LoRA step over a quantized base, measured where it
 * happens (the kernel's VmHWM of the `train` process, polled: bench/lib/rss_sampler.ts), and the
 * step times that process's metrics.jsonl records. The base is written first as a GGUF file of the
 * shape's random weights, straight in the format's blocks (never a float32 copy of the model: rows
 * of random values are quantized once and the file's rows drawn from them), its head Q6_K as
 * llama.cpp's Q4_0 and Q4_K_M files hold it; norms float32.
 *
 * The run: `train --init FILE.gguf --lora-rank R` on q,k,v,o,gate,up,down, --context tokens, batch 1,
 * AdamW, --activation-checkpointing, a byte-level text file (a one-window validation file, so the
 * final evaluation is one forward). Target (Llama-3.1-8B shape, Q4_0 or Q4_K_M): ≤ 7 GiB peak.
 * With --stages P the run is P processes of P pipeline stages (`--workers P --pipeline-stages P`,
 * one micro-batch, --threads ÷ P each), each holding only its layers of the file; each worker's
 * peak is polled. Target for 2 stages: ≤ 4 GiB in every process.
 * Last line: one JSON object.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readMetrics } from '../src/metrics/reader.js';
import { exportGguf } from '../src/nn/interchange/gguf_export.js';
import { type LlamaSpec, createModel, llamaSpec } from '../src/nn/models/index.js';
import type { Module } from '../src/nn/module.js';
import { buildDeferred } from '../src/tensor/deferred_init.js';
import { withoutRandomInit } from '../src/tensor/init_scope.js';
import { quantize } from '../src/tensor/ops/quant.js';
import { type QuantType, quantBytes } from '../src/tensor/quant/formats.js';
import { CPU, deviceMemory } from '../src/tensor/storage.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { writeStandInTokenizer } from './lib/grpo_inputs.js';
import { packageRoot } from './lib/index.js';
import { RssSampler } from './lib/rss_sampler.js';

const GIB = 2 ** 30;
/** Issue 46's targets: one process, and each process of 2 pipeline stages. */
const TARGET_GIB: Readonly<Record<number, number>> = { 1: 7, 2: 4 };
const TARGETS = 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj';

/** Llama-3.1-8B's config.json shape (its rotary scaling left out: it changes no byte held). */
const LLAMA_31_8B: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 128256, context: 8192, layers: 32, width: 4096, intermediate: 14336,
  heads: 32, kvHeads: 8, headDim: 128, ropeTheta: 5e5, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};

function shapeOf(name: string): LlamaSpec {
  if (name === 'llama-3.1-8b') return LLAMA_31_8B;
  if (name === 'smollm2-135m') return llamaSpec('smollm2-135m', 49152, 8192);
  throw new Error(`--shape: llama-3.1-8b or smollm2-135m, not ${name}`);
}

/**
 * Every matrix of `model` (built deferred: nothing held yet) bound to random blocks of `format`
 * (the head, or a tied embedding, Q6_K), norms to ones: rows of random values are quantized once per
 * row length and the tensors' rows drawn from those.
 */
function bindRandomBlocks(model: Module, spec: LlamaSpec, format: QuantType): void {
  const rng = new Rng(46);
  const pools = new Map<string, Uint8Array[]>();
  const pool = (type: QuantType, cols: number): Uint8Array[] => {
    const key = `${type}/${cols}`;
    if (!pools.has(key)) {
      const rows = Array.from({ length: 32 }, () => {
        const values = Tensor.fromHost(Float32Array.from({ length: cols }, () => 0.02 * rng.normal()), [1, cols]);
        return quantize(values, type).values() as Uint8Array;
      });
      pools.set(key, rows);
    }
    return pools.get(key)!;
  };
  for (const [name, p] of model.namedParameters()) {
    if (p.ndim !== 2) {
      p.bind(deviceMemory(CPU).fromHost(new Float32Array(p.size).fill(1)), null);
      continue;
    }
    const [rows, cols] = p.shape;
    const head = name === 'lm_head.weight' || (spec.tieEmbeddings && name === 'model.embed_tokens.weight');
    // llama.cpp's fallback where a row is not whole 256-blocks: Q6_K → Q8_0, Q4_K → Q5_0.
    const whole = cols % 256 === 0;
    const type: QuantType = head ? (whole ? 'q6_k' : 'q8_0') : format === 'q4_k' && !whole ? 'q5_0' : format;
    const rowBytes = quantBytes(type, 1, cols);
    const blocks = new Uint8Array(quantBytes(type, rows, cols));
    const from = pool(type, cols);
    for (let r = 0; r < rows; r++) blocks.set(from[rng.int(from.length)], r * rowBytes);
    p.requiresGrad = false;
    p.holdFrozen(deviceMemory(CPU).fromHost(blocks, type));
  }
}

/** The file, with a byte-level stand-in tokenizer (bench/lib/grpo_inputs.ts) so that `serve` and `export` read it as they read a downloaded one. */
async function writeBase(path: string, spec: LlamaSpec, format: QuantType): Promise<void> {
  const model = buildDeferred(() => withoutRandomInit(() => createModel(spec, 0)));
  bindRandomBlocks(model, spec, format);
  const tokenizer = writeStandInTokenizer(mkdtempSync(join(tmpdir(), 'smol-qlora-tokenizer-')), spec.vocabSize);
  try {
    await exportGguf(path, model, spec, { tokenizer: { json: tokenizer }, name: `random-${format}` });
  } finally {
    rmSync(dirname(tokenizer), { recursive: true, force: true });
  }
}

interface RunReport { peakBytes: number[]; stepMs: number[]; code: number | null; stderrTail: string; estimateGib: number | null }

async function trainOnce(file: string, dir: string, o: { context: number; rank: number; steps: number; threads: number; stages: number }): Promise<RunReport> {
  // Bytes as tokens (`--tokenizer bytes`): a window of context + 1 bytes per sample; the validation file is one window.
  const text = (n: number, seed: number): string => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed) % 26))).join('');
  writeFileSync(join(dir, 'train.txt'), text((o.context + 1) * (o.steps + 2), 1));
  writeFileSync(join(dir, 'val.txt'), text(o.context + 1, 3));
  const args = [
    join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js'), 'train', '--init', file, '--lora-rank', String(o.rank), '--lora-targets', TARGETS,
    '--dataset', 'text', '--data-file', join(dir, 'train.txt'), '--val-file', join(dir, 'val.txt'), '--tokenizer', 'bytes',
    '--context', String(o.context), '--batch-size', '1', '--max-steps', String(o.steps), '--optimizer', 'adamw', '--activation-checkpointing',
    '--threads', String(Math.max(1, Math.floor(o.threads / o.stages))), '--eval-every', '0', '--experiments-dir', dir, '--name', 'run',
    ...(o.stages > 1 ? ['--workers', String(o.stages), '--pipeline-stages', String(o.stages), '--micro-batches', '1'] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // Stages: the launcher's workers (node processes under it), not the launcher.
  const sampler = o.stages > 1 ? new RssSampler([child.pid!], false, 50, 'node') : new RssSampler([child.pid!], true, 50);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  // A helper a worker starts for a moment (a few MB) is no stage.
  const peakBytes = sampler.stop().filter((b) => o.stages === 1 || b > 64 * 2 ** 20);
  // A step's time as the loop measures it on rank 0: compute (forward, backward, optimizer), and over stages the sends and the waits on the other stage.
  const steps = code === 0 ? readMetrics(join(dir, 'run', 'metrics.jsonl')).steps.filter((s) => s.rank === 0) : [];
  // The run's own estimate before loading (train/run/memory_estimate.ts), beside the measured peak.
  const estimate = /memory estimate per process ([\d.]+) GiB/.exec(stderr);
  return { peakBytes, stepMs: steps.map((s) => s.compute_ms + s.comm_ms + s.wait_ms), code, stderrTail: stderr.trim().split('\n').slice(-3).join(' | '), estimateGib: estimate ? Number(estimate[1]) : null };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shape: { type: 'string', default: 'llama-3.1-8b' }, format: { type: 'string', default: 'q4_0' }, context: { type: 'string', default: '512' },
      rank: { type: 'string', default: '16' }, steps: { type: 'string', default: '2' }, threads: { type: 'string', default: '2' },
      stages: { type: 'string', default: '1' }, layers: { type: 'string' }, dir: { type: 'string' }, keep: { type: 'boolean', default: false }, write: { type: 'boolean', default: false },
    },
  });
  // --layers N: the shape's layers cut to N (a quicker reading of the same widths).
  const spec = { ...shapeOf(values.shape!), ...(values.layers !== undefined ? { layers: Number(values.layers) } : {}) };
  const format = values.format as QuantType;
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'smol-qlora-memory-'));
  const file = join(dir, `${values.shape}-${format}.gguf`);
  if (values.write) return writeBase(file, spec, format);
  const started = Date.now();
  // Written by a child of its own: the blocks it held (the file's size, twice while exporting) are
  // gone before the run starts, so the machine's available memory is the run's.
  const writer = spawn(process.execPath, ['--max-old-space-size=16384', fileURLToPath(import.meta.url), ...process.argv.slice(2), '--dir', dir, '--write'], { stdio: 'inherit' });
  const wrote = await new Promise<number | null>((resolve) => writer.on('exit', resolve));
  if (wrote !== 0) throw new Error(`writing ${file} failed (exit ${wrote})`);
  const fileBytes = statSync(file).size;
  console.log(`bench:qlora-memory: wrote ${file} (${(fileBytes / GIB).toFixed(2)} GiB) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const o = { context: Number(values.context), rank: Number(values.rank), steps: Number(values.steps), threads: Number(values.threads), stages: Number(values.stages) };
  const target = TARGET_GIB[o.stages];
  if (target === undefined) throw new Error(`--stages: 1 or 2 (the targets issue 46 sets), not ${values.stages}`);
  const run = await trainOnce(file, dir, o);
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  const peakGib = run.peakBytes.map((b) => b / GIB);
  const met = run.code === 0 && peakGib.length === o.stages && peakGib.every((g) => g <= target);
  console.log(`| shape | base | LoRA | context | processes | peak RSS | estimated before loading | target | step times |`);
  console.log(`|---|---|---|---|---|---|---|---|---|`);
  console.log(`| ${values.shape} | ${format} (+ Q6_K head), ${(fileBytes / GIB).toFixed(2)} GiB | r=${o.rank} on ${TARGETS} | ${o.context}, batch 1, activation checkpointing, AdamW | ${o.stages > 1 ? `${o.stages} pipeline stages` : '1'} | ${peakGib.map((g) => `${g.toFixed(2)} GiB`).join(', ')} | ${run.estimateGib === null ? '–' : `${run.estimateGib.toFixed(2)} GiB`} | ≤ ${target} GiB: ${met ? 'met' : 'MISSED'} | ${run.stepMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')} (${o.threads} threads) |`);
  if (run.code !== 0) console.log(`the run failed (exit ${run.code}): ${run.stderrTail}`);
  console.log(JSON.stringify({ shape: values.shape, format, fileBytes, ...o, peakBytes: run.peakBytes, peakGib, estimateGib: run.estimateGib, targetGib: target, met, stepMs: run.stepMs, exit: run.code }));
}

await main();
