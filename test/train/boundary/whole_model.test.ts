import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSafetensors, toFloat32 } from '../../../src/nn/interchange/safetensors.js';
import { maxRelDiff, runCliProcess, tempDir } from '../../helpers/cluster.js';

/**
 * `--save` after the layouts where every rank holds a part of the model (train/boundary/whole_model.ts): a
 * pipeline of 2 stages × 2 replicas, tensor parallel 2, and both composed (4 workers) each write one
 * model file, the whole model under its own names, equal to one process's after the same steps at
 * the same global batch. Real processes on 127.0.0.1, gpt2-tiny; plain SGD, so a wrong piece shows
 * and the summation order of near-zero gradients (which Adam magnifies) does not.
 */
let dir = '';
before(() => {
  dir = tempDir('whole-model');
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function train(name: string, args: string[], model = 'gpt2-tiny'): Promise<void> {
  const exit = await runCliProcess([
    'train', '--model', model, '--dataset', 'synthetic_text', '--context', '32', '--max-steps', '3', '--eval-every', '0', '--optimizer', 'sgd', '--lr', '0.5',
    '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', name, '--save', join(dir, `${name}.safetensors`), ...args,
  ], { timeoutMs: 180_000 });
  assert.equal(exit.code, 0, exit.stderr);
}

/** The file's tensors by name, as float32. */
function tensorsOf(name: string): Map<string, Float32Array> {
  const file = join(dir, `${name}.safetensors`);
  const { tensors } = readSafetensors(file);
  return new Map([...tensors].map(([k, t]) => [k, toFloat32(file, k, t)]));
}

describe('--save after pipeline and tensor parallelism', { timeout: 400_000 }, () => {
  it('each layout writes the whole model, equal to one process\'s', async () => {
    // Global batch 4 everywhere: 2 pipeline replicas of 2 samples, one tensor-parallel replica of 4.
    await Promise.all([
      train('one', ['--batch-size', '4']),
      train('tp', ['--batch-size', '4', '--workers', '2', '--tensor-parallel', '2']),
    ]);
    await train('pp', ['--batch-size', '2', '--workers', '4', '--pipeline-stages', '2', '--micro-batches', '2']);
    await train('pp-tp', ['--batch-size', '4', '--workers', '4', '--pipeline-stages', '2', '--tensor-parallel', '2', '--micro-batches', '2']);
    const reference = tensorsOf('one');
    const flat = (m: Map<string, Float32Array>): Float32Array => Float32Array.from([...m.values()].flatMap((v) => Array.from(v)));
    for (const name of ['tp', 'pp', 'pp-tp']) {
      const saved = tensorsOf(name);
      assert.deepEqual([...saved.keys()], [...reference.keys()], `${name}: the whole model's tensors, in its order`);
      for (const [k, v] of saved) assert.equal(v.length, reference.get(k)!.length, `${name} ${k}`);
      assert.ok(maxRelDiff(flat(saved), flat(reference)) < 1e-5, `${name}: ${maxRelDiff(flat(saved), flat(reference))}`);
    }
  });

  it('llama-tiny (q/k/v and gate/up split by columns, o/down by rows, kv heads split) after tensor parallelism and a pipeline writes one process\'s model', async () => {
    await Promise.all([
      train('llama-one', ['--batch-size', '4'], 'llama-tiny'),
      train('llama-tp', ['--batch-size', '4', '--workers', '2', '--tensor-parallel', '2'], 'llama-tiny'),
    ]);
    await train('llama-pp', ['--batch-size', '2', '--workers', '4', '--pipeline-stages', '2', '--micro-batches', '2'], 'llama-tiny');
    const reference = tensorsOf('llama-one');
    assert.ok(reference.has('model.layers.1.self_attn.k_proj.weight') && reference.has('lm_head.weight'));
    for (const name of ['llama-tp', 'llama-pp']) {
      const saved = tensorsOf(name);
      assert.deepEqual([...saved.keys()], [...reference.keys()], `${name}: the whole model's tensors, in its order`);
      for (const [k, v] of saved) assert.ok(maxRelDiff(v, reference.get(k)!) < 1e-5, `${name} ${k}: ${maxRelDiff(v, reference.get(k)!)}`);
    }
  });
});
