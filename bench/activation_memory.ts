/**
 * npm run bench:activation-memory -- [--context 1024] [--batch 1] [--only gpt2,smollm2-135m]
 *
 * Issue 32 §3: the peak memory of one training step (forward, cross-entropy, backward) with and
 * without --activation-checkpointing, for GPT-2 124M and the SmolLM2-135M shape (random weights,
 * its 49,152-token vocabulary) at context 1024, on the native backend with one thread. Each case
 * runs in a child process of its own; it reports its RSS once the model, its arena and its
 * gradient arena are allocated ("model") and the kernel's high-water mark after two steps
 * (VmHWM, "peak"): their difference is what the step itself holds, activations mostly. Dropout is
 * off (the presets'). Needs Linux (/proc). Last line: one JSON object with every figure.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { enableActivationCheckpointing } from '../src/nn/activation_checkpointing.js';
import { type ModelSpec, createModel, gpt2Spec, llamaSpec } from '../src/nn/index.js';
import { backward } from '../src/tensor/autograd.js';
import { loadNativeBackend } from '../src/tensor/backends/native.js';
import { backend, setBackend } from '../src/tensor/dispatch.js';
import { crossEntropy } from '../src/tensor/ops/loss.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { runJsonChild } from './lib/child.js';

const MODELS = ['gpt2', 'smollm2-135m'] as const;
type BenchModel = (typeof MODELS)[number];
const MB = 2 ** 20;

interface CaseResult { model: BenchModel; checkpointing: boolean; model_mb: number; peak_mb: number; step_mb: number; step_s: number }

function specOf(name: BenchModel, context: number): ModelSpec {
  return name === 'gpt2' ? gpt2Spec('gpt2', 50257, context) : llamaSpec('smollm2-135m', 49152, context);
}

/** A /proc/self/status field in bytes. */
function statusBytes(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`/proc/self/status has no ${field} (Linux only)`);
  return Number(m[1]) * 1024;
}

/** One case, in this (child) process: two steps, then the figures. */
function runCase(name: BenchModel, checkpointing: boolean, context: number, batch: number): CaseResult {
  const native = loadNativeBackend();
  if (!native.backend) throw new Error(`native backend unavailable: ${native.reason}`);
  setBackend('native');
  backend().setThreads(1);
  const spec = specOf(name, context);
  const model = createModel(spec, 1);
  if (checkpointing) enableActivationCheckpointing(model, name);
  model.train();
  model.zeroGrad();
  const vocab = spec.type === 'gpt2' || spec.type === 'llama' ? spec.vocabSize : 0;
  const rng = new Rng(2);
  const ids = Tensor.from(Array.from({ length: batch * context }, () => rng.int(vocab)), [batch, context]);
  const labels = Int32Array.from({ length: batch * context }, () => rng.int(vocab));
  const modelBytes = statusBytes('VmRSS');
  const started = performance.now();
  for (let step = 0; step < 2; step++) backward(crossEntropy(model.forward(ids), labels));
  const stepS = (performance.now() - started) / 2000;
  const peak = statusBytes('VmHWM');
  return { model: name, checkpointing, model_mb: Math.round(modelBytes / MB), peak_mb: Math.round(peak / MB), step_mb: Math.round((peak - modelBytes) / MB), step_s: Number(stepS.toFixed(2)) };
}

function parseArgs(argv: string[]): { context: number; batch: number; only: BenchModel[]; child: string | null } {
  const o = { context: 1024, batch: 1, only: [...MODELS] as BenchModel[], child: null as string | null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag}: expected a value`);
    if (flag === '--context' || flag === '--batch') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${value}`);
      o[flag === '--context' ? 'context' : 'batch'] = n;
    } else if (flag === '--only') {
      o.only = value.split(',').map((m) => {
        if (!(MODELS as readonly string[]).includes(m)) throw new Error(`--only: unknown model ${m} (${MODELS.join(', ')})`);
        return m as BenchModel;
      });
    } else if (flag === '--child') o.child = value;
    else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) {
    const [name, mode] = o.child.split(':');
    process.stdout.write(`${JSON.stringify(runCase(name as BenchModel, mode === 'on', o.context, o.batch))}\n`);
    return;
  }
  const results: CaseResult[] = [];
  process.stdout.write(`one training step at context ${o.context}, batch ${o.batch}, native backend, one thread\n`);
  for (const name of o.only) {
    for (const mode of ['off', 'on']) {
      const args = [fileURLToPath(import.meta.url), '--context', String(o.context), '--batch', String(o.batch), '--child', `${name}:${mode}`];
      const r = await runJsonChild<CaseResult>(process.execPath, args, { timeoutMs: 15 * 60_000 });
      if (!r.value) throw new Error(`${name} (checkpointing ${mode}) failed: ${r.error}\n${r.stderr.slice(-2000)}`);
      results.push(r.value);
      const v = r.value;
      process.stdout.write(`${name.padEnd(13)} checkpointing ${mode.padEnd(3)}  model ${v.model_mb} MB  peak ${v.peak_mb} MB  step holds ${v.step_mb} MB  ${v.step_s} s/step\n`);
    }
  }
  process.stdout.write(`${JSON.stringify({ bench: 'activation-memory', context: o.context, batch: o.batch, results })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
