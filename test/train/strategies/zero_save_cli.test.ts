import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSafetensors, toFloat32 } from '../../../src/nn/interchange/safetensors.js';
import { maxRelDiff, rankZeroLosses, runCliProcess, tempDir } from '../../helpers/cluster.js';

/**
 * `--save` after `--zero 1` and `--zero 2` (the whole parameters on every rank) writes one model
 * file equal to one process's, and `--init x.safetensors --zero 3` (each rank reading its own ranges)
 * trains as one process does from the same file: real processes on 127.0.0.1, gpt2-tiny.
 */
let dir = '';
before(() => {
  dir = tempDir('zero-save');
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function train(name: string, args: string[]): Promise<void> {
  const exit = await runCliProcess([
    'train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '32', '--max-steps', '3', '--eval-every', '0',
    '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', name, ...args,
  ], { timeoutMs: 120_000 });
  assert.equal(exit.code, 0, exit.stderr);
}

const losses = (name: string): number[] => rankZeroLosses(join(dir, name));

/** A safetensors file's tensors by name, as float32. */
function tensorsOf(file: string): Map<string, Float32Array> {
  const { tensors } = readSafetensors(file);
  return new Map([...tensors].filter(([, t]) => t.dtype === 'F32').map(([name, t]) => [name, toFloat32(file, name, t)]));
}

describe('ZeRO --save and --init through train --workers', { timeout: 300_000 }, () => {
  it('--zero 1 and --zero 2 save one model file equal to one process\'s', async () => {
    const save = (name: string): string[] => ['--save', join(dir, `${name}.safetensors`)];
    await Promise.all([
      train('one', ['--batch-size', '8', ...save('one')]),
      train('z1', ['--workers', '2', '--zero', '1', '--batch-size', '4', ...save('z1')]),
    ]);
    await train('z2', ['--workers', '2', '--zero', '2', '--batch-size', '4', ...save('z2')]);
    const reference = tensorsOf(join(dir, 'one.safetensors'));
    for (const name of ['z1', 'z2']) {
      const saved = tensorsOf(join(dir, `${name}.safetensors`));
      assert.deepEqual([...saved.keys()], [...reference.keys()], `${name}: the whole model's tensors`);
      // Relative to the whole model's scale, as the other ZeRO comparisons (Adam magnifies the summation order of near-zero gradients).
      const flat = (m: Map<string, Float32Array>): Float32Array => Float32Array.from([...m.values()].flatMap((v) => Array.from(v)));
      assert.ok(maxRelDiff(flat(saved), flat(reference)) < 1e-5, `${name}: ${maxRelDiff(flat(saved), flat(reference))}`);
    }
  });

  it('--init x.safetensors --zero 3 starts from the file, as one process does', async () => {
    const init = ['--init', join(dir, 'one.safetensors')];
    await Promise.all([
      train('one-init', ['--batch-size', '8', '--seed', '7', ...init]),
      train('z3-init', ['--workers', '2', '--zero', '3', '--batch-size', '4', '--seed', '7', ...init]),
    ]);
    await train('one-fresh', ['--batch-size', '8', '--seed', '7']);
    const [one, z3, fresh] = [losses('one-init'), losses('z3-init'), losses('one-fresh')];
    assert.equal(one.length, 3);
    assert.ok(maxRelDiff(one, fresh) > 1e-3, 'the file changes the start');
    assert.ok(maxRelDiff(z3, one) < 1e-5, `losses ${z3} vs ${one}`);
  });
});
