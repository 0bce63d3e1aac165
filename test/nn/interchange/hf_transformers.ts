/**
 * Shared by the Hugging Face folder tests: the Python with transformers (hf_transformers.py's side),
 * our model's logits, loss and gradients under Hugging Face names, and their comparison.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nameMapFor } from '../../../src/nn/interchange/hf_names.js';
import { transpose2d } from '../../../src/nn/interchange/model_io.js';
import type { ModelSpec } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { backward } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/nn/interchange/hf_transformers.py');
const VENV = '/opt/torchvenv/bin/python';

/** A Python with torch and transformers: $SMOLCLUSTER_PYTHON or the project's venv. */
export const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, VENV], ['torch', 'transformers']);
// CI builds the venv (.ci/run): there, a venv without transformers is a failure, not a skip.
if (!PYTHON && process.env.CI === 'true' && existsSync(VENV)) throw new Error(`${VENV} exists but has no torch and transformers`);
export const SKIP = PYTHON ? false : 'no Python with torch and transformers (set SMOLCLUSTER_PYTHON or build /opt/torchvenv)';

/** Logits, mean loss and every parameter's gradient (Hugging Face name and layout). */
export interface Run {
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
}

export interface Inputs {
  x: number[];
  shape: number[];
  /** Per position; -100 is not scored. */
  labels: number[];
}

export function tokenInputs(n: number, t: number, vocab: number, seed: number, ignoreEvery = 5): Inputs {
  const rng = new Rng(seed);
  const x = Array.from({ length: n * t }, () => rng.int(vocab));
  const labels = x.map((v, i) => (i % ignoreEvery === ignoreEvery - 1 ? -100 : (v * 7 + 3) % vocab));
  return { x, shape: [n, t], labels };
}

/** Our model in eval mode on the inputs: logits, loss and gradients under the external names. */
export function runOurs(model: Module, spec: ModelSpec, inputs: Inputs): Run {
  model.train(false);
  model.zeroGrad();
  const logits = model.forward(Tensor.from(inputs.x, inputs.shape));
  const loss = crossEntropy(logits, Int32Array.from(inputs.labels, (l) => (l === -100 ? -1 : l)));
  backward(loss);
  const names = nameMapFor(spec);
  const grads: Record<string, number[]> = {};
  for (const [name, p] of model.namedParameters()) {
    const g = Float32Array.from(p.gradValues()!);
    grads[names.external(name)] = Array.from(names.transposed(name) ? transpose2d(g, p.shape[0], p.shape[1]) : g);
  }
  return { logits: Array.from(logits.values()), loss: loss.item(), grads };
}

/** Runs hf_transformers.py; its JSON result. */
export function python(dir: string, args: string[], inputs: Inputs): Run {
  const file = join(dir, `inputs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(inputs));
  const r = spawnSync(PYTHON!, [SCRIPT, ...args.map((a) => (a === '@inputs' ? file : a))], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `hf_transformers.py ${args[0]} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Run;
}

/** hf_transformers.py tokenize: AutoTokenizer's ids for each text. */
export function pythonTokenize(dir: string, folder: string, texts: string[]): number[][] {
  const file = join(dir, `texts-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(texts));
  const r = spawnSync(PYTHON!, [SCRIPT, 'tokenize', folder, file], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `hf_transformers.py tokenize failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as number[][];
}

/**
 * One hf_transformers.py process for a whole test file (`serve`): torch and transformers are
 * imported once, not once a command (seconds each). Commands go one at a time, each answered on
 * one line; every wait has a deadline.
 */
export class PythonSession {
  private readonly child: ChildProcess;
  private readonly answers: string[] = [];
  private pending = '';
  private stderr = '';
  private exited = false;
  private wake: (() => void) | null = null;

  constructor(private readonly dir: string) {
    this.child = spawn(PYTHON!, [SCRIPT, 'serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      const lines = (this.pending + text).split('\n');
      this.pending = lines.pop()!;
      // Only the answers: anything else a library prints is not ours to parse.
      this.answers.push(...lines.filter((l) => l.startsWith('RESULT ') || l.startsWith('ERROR ')));
      this.wake?.();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.stderr = (this.stderr + text).slice(-20_000)));
    this.child.on('close', () => {
      this.exited = true;
      this.wake?.();
    });
  }

  /** hf_transformers.py load / make (args as on its command line, '@inputs' for the inputs' file). */
  async run(args: string[], inputs: Inputs): Promise<Run> {
    const file = join(this.dir, `inputs-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(inputs));
    return (await this.command(args.map((a) => (a === '@inputs' ? file : a)))) as Run;
  }

  /** hf_transformers.py tokenize: AutoTokenizer's ids for each text. */
  async tokenize(folder: string, texts: string[]): Promise<number[][]> {
    const file = join(this.dir, `texts-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(texts));
    return (await this.command(['tokenize', folder, file])) as number[][];
  }

  close(): void {
    this.child.kill();
  }

  private async command(args: string[], timeoutMs = 300_000): Promise<unknown> {
    if (this.exited) throw new Error(`hf_transformers.py serve has exited: ${this.stderr}`);
    this.child.stdin!.write(`${JSON.stringify(args)}\n`);
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length === 0) {
      if (this.exited) throw new Error(`hf_transformers.py serve exited during ${args[0]}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`hf_transformers.py ${args[0]}: no answer within ${timeoutMs} ms; its stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    const line = this.answers.shift()!;
    if (line.startsWith('ERROR ')) throw new Error(`hf_transformers.py ${args[0]} failed: ${JSON.parse(line.slice('ERROR '.length)) as string}`);
    return JSON.parse(line.slice('RESULT '.length));
  }
}

/** max|a − b| / max|b| (or over `floor` where |b| is smaller: a gradient that is zero in exact arithmetic). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  assert.equal(a.length, b.length, 'lengths');
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/**
 * BERT's key bias has a gradient that is zero in exact arithmetic (softmax ignores a shift every
 * key shares): float noise on both sides, measured against a thousandth of the run's largest
 * gradient instead of its own (noise) scale.
 */
const ZERO_IN_EXACT_ARITHMETIC = /attention\.self\.key\.bias$/;
const NOISE_FLOOR = 1e-3;

/**
 * Logits, loss and every gradient within `tol` relative. Tied parameters appear once in torch's
 * named_parameters, under whichever tied name it met first: `aliases` maps ours to theirs.
 */
export function assertSameRun(ours: Run, ref: Run, what: string, tol = 1e-4, aliases: Record<string, string> = {}): void {
  const logits = relDiff(ours.logits, ref.logits);
  assert.ok(logits < tol, `${what}: logits differ by ${logits.toExponential(2)} relative`);
  const loss = Math.abs(ours.loss - ref.loss) / Math.abs(ref.loss);
  assert.ok(loss < tol, `${what}: loss ${ours.loss} vs transformers ${ref.loss}`);
  const names = Object.keys(ours.grads);
  assert.equal(names.length, Object.keys(ref.grads).length, `${what}: ${names.length} gradients here, ${Object.keys(ref.grads).length} in transformers (${Object.keys(ref.grads).filter((n) => !(n in ours.grads) && !Object.values(aliases).includes(n)).join(', ')})`);
  const largest = Math.max(...Object.values(ref.grads).map((g) => Math.max(...g.map(Math.abs))));
  for (const name of names) {
    const theirs = ref.grads[name] ?? ref.grads[aliases[name]];
    assert.ok(theirs, `${what}: transformers has no gradient for ${name}`);
    const d = relDiff(ours.grads[name], theirs, ZERO_IN_EXACT_ARITHMETIC.test(name) ? NOISE_FLOOR * largest : 0);
    assert.ok(d < tol, `${what}: gradient of ${name} differs by ${d.toExponential(2)} relative`);
  }
}
