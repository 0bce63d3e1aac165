/**
 * Tensor and pipeline parallelism with GPU workers, in real `smolcluster worker` processes on
 * 127.0.0.1 (the GPU is SwiftShader on a machine without one), each with its own --device: a split
 * model whose shards or stages sit on a GPU, or on a GPU and a cpu, computes what one cpu process
 * computes — every step's loss and the test loss within float32 tolerance. Tiny models (SwiftShader
 * is slow): gpt2-tiny cut to width 32, 2 heads, context 8, and bert-tiny likewise, on a short text
 * file (byte tokens) whose test split is a few windows (synthetic_text's 384 test sequences took
 * SwiftShader about 50 s to evaluate); the regression MLP. Skipped when no WebGPU adapter is found,
 * except under CI=true.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEST_TOKEN, freePort, runAll, runCliProcess, stepRecords, tempDir } from '../helpers/cluster.js';
import { WEBGPU_CHILD_ENV, webGpuMissingInChild } from '../helpers/webgpu.js';

let dir = '';
let reason: string | null = null;
const textFile = (): string => join(dir, 'text.txt');
before(async () => {
  dir = tempDir('gpu-model-parallel');
  // About 1,100 bytes: at context 8 some 110 training windows and a test split of about 12.
  const words = ['the', 'cluster', 'trains', 'a', 'model', 'on', 'every', 'worker', 'and', 'its', 'gpu', 'sums', 'the', 'gradients'];
  writeFileSync(textFile(), Array.from({ length: 160 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length]).join(' ') + '.\n');
  reason = await webGpuMissingInChild();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${reason}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { ...WEBGPU_CHILD_ENV, SMOLCLUSTER_TOKEN: TEST_TOKEN };
const COMMON = ['--threads', '1', '--seed', '3', '--timeout', '120', '--max-steps', '3'];
const SMALL_TEXT = ['--dataset', 'text', '--tokenizer', 'bytes', '--layers', '2', '--width', '32', '--heads', '2', '--context', '8', '--batch-size', '4'];
const GPT2 = () => ['--model', 'gpt2-tiny', ...SMALL_TEXT, '--data-file', textFile(), '--optimizer', 'adamw', '--lr', '0.001', '--clip-grad-norm', '1'];
const BERT = () => ['--model', 'bert-tiny', ...SMALL_TEXT, '--data-file', textFile(), '--optimizer', 'adamw', '--lr', '0.001'];
const MLP = () => ['--model', 'mlp', '--dataset', 'synthetic-regression', '--batch-size', '8', '--optimizer', 'sgd', '--momentum', '0.9', '--lr', '0.05'];

/**
 * Losses and the test loss agree within this, relative: the GPU sums in other orders than the
 * cpu. The worst measured on SwiftShader is printed by each case (`# ... worst ...`).
 */
const RTOL = 1e-5;

interface Result {
  test_loss: number;
  per_rank: { device: string }[];
}

/** One cluster: rank r is a `worker` on devices[r]. */
async function cluster(name: string, devices: string[], args: string[]): Promise<Result> {
  const master = `127.0.0.1:${await freePort()}`;
  const exited = await runAll(devices.map((device, rank) => ({
    args: ['worker', ...COMMON, ...args, '--rank', String(rank), '--world-size', String(devices.length), '--master', master, '--device', device, '--experiments-dir', dir, '--name', name],
    env: ENV,
  })), 400_000);
  exited.forEach((e, r) => assert.equal(e.code, 0, `rank ${r} (${devices[r]}): ${e.stderr}`));
  return JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as Result;
}

/** One cpu process on the same model and batch. */
async function single(name: string, args: string[]): Promise<Result> {
  const one = await runCliProcess(['train', ...COMMON, ...args, '--experiments-dir', dir, '--name', name], { env: ENV, timeoutMs: 120_000 });
  assert.equal(one.code, 0, one.stderr);
  return JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as Result;
}

/** Every rank's per-step losses and the test loss against one process's; returns the worst relative difference. */
function compare(name: string, got: Result, oneName: string, want: Result, ranks: number): number {
  const ref = stepRecords(join(dir, oneName, 'metrics.jsonl')).map((r) => r.loss ?? NaN);
  assert.equal(ref.length, 3);
  let worst = 0;
  const check = (g: number, w: number, what: string): void => {
    const rel = Math.abs(g - w) / Math.abs(w);
    worst = Math.max(worst, rel);
    assert.ok(rel <= RTOL, `${name} ${what}: ${g} against ${w} (${rel.toExponential(2)} relative)`);
  };
  for (let rank = 0; rank < ranks; rank++) {
    const losses = stepRecords(join(dir, name, 'metrics.jsonl'), rank).map((r) => r.loss ?? NaN);
    assert.equal(losses.length, ref.length, `${name} rank ${rank} steps`);
    losses.forEach((l, s) => check(l, ref[s], `rank ${rank} step ${s}`));
  }
  check(got.test_loss, want.test_loss, 'test loss');
  process.stdout.write(`# ${name}: worst ${worst.toExponential(2)} relative to one cpu process\n`);
  return worst;
}

interface Case {
  name: string;
  devices: string[];
  /** The model's flags (made once the text file's folder exists). */
  model: () => string[];
  flags: string[];
}

const cases: Case[] = [
  // Rank 0 on the GPU scores the test set from the GPU's logits.
  { name: 'tp-gpt2-gpu-cpu', devices: ['gpu', 'cpu'], model: GPT2, flags: ['--tensor-parallel', '2'] },
  { name: 'tp-bert-cpu-gpu', devices: ['cpu', 'gpu'], model: BERT, flags: ['--tensor-parallel', '2'] },
  { name: 'pp-mlp-gpipe-gpu-cpu', devices: ['gpu', 'cpu'], model: MLP, flags: ['--pipeline-stages', '2', '--micro-batches', '2', '--pipeline-schedule', 'gpipe'] },
  { name: 'pp-mlp-1f1b-gpu-gpu', devices: ['gpu', 'gpu'], model: MLP, flags: ['--pipeline-stages', '2', '--micro-batches', '2', '--pipeline-schedule', '1f1b'] },
  // The tied embedding: its owner on stage 0 (cpu) and its copy on stage 1 (GPU) sum their gradients across devices.
  { name: 'pp-gpt2-1f1b-cpu-gpu', devices: ['cpu', 'gpu'], model: GPT2, flags: ['--pipeline-stages', '2', '--micro-batches', '2', '--pipeline-schedule', '1f1b'] },
];

describe('tensor and pipeline parallelism with GPU workers equal one cpu process', { timeout: 1_200_000 }, () => {
  const references = new Map<string, Promise<Result>>();
  const reference = (model: string[]): Promise<Result> => {
    const key = model.join(' ');
    if (!references.has(key)) references.set(key, single(`one-${references.size}`, model));
    return references.get(key)!;
  };
  const oneName = (model: string[]): string => `one-${[...references.keys()].indexOf(model.join(' '))}`;

  for (const c of cases) {
    it(`${c.name}: ${c.flags.join(' ')} on ${c.devices.join(' + ')}`, async (t) => {
      if (reason) return t.skip(reason);
      const model = c.model();
      const [got, want] = await Promise.all([cluster(c.name, c.devices, [...model, ...c.flags]), reference(model)]);
      assert.deepEqual(got.per_rank.map((r) => r.device), c.devices.map((d) => (d === 'gpu' ? 'webgpu' : 'cpu')));
      compare(c.name, got, oneName(model), want, c.devices.length);
    });
  }
});
