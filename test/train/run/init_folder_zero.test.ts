/**
 * `--init DIR --zero 3` on a sharded Hugging Face folder: each rank reads only its ranges of the
 * shards (nn/interchange/safetensors_ranges.ts), and the run trains as one process does from the
 * same folder; the model comes from config.json on every rank. Real processes on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import { maxRelDiff, rankZeroLosses, runCliProcess, tempDir } from '../../helpers/cluster.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 64, context: 32, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
};

let dir = '';
before(() => {
  dir = tempDir('init-folder-zero');
  saveFolder(join(dir, 'models', 'init'), createModel(SPEC, 5), SPEC, { shardBytes: 8000 });
  saveFolder(join(dir, 'models', 'other'), createModel(SPEC, 6), SPEC);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function train(name: string, args: string[]): Promise<void> {
  const exit = await runCliProcess([
    'train', '--dataset', 'synthetic_text', '--context', '16', '--max-steps', '3', '--eval-every', '0', '--seed', '7',
    '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', name, ...args,
  ], { timeoutMs: 120_000 });
  assert.equal(exit.code, 0, exit.stderr);
}

const losses = (name: string): number[] => rankZeroLosses(join(dir, name));

describe('--init DIR --zero 3 (sharded folder, ranged reads)', { timeout: 300_000 }, () => {
  it('trains as one process does from the same folder', async () => {
    const init = ['--init', join(dir, 'models', 'init')];
    await train('one', ['--batch-size', '8', ...init]);
    await train('z3', ['--workers', '2', '--zero', '3', '--batch-size', '4', ...init]);
    await train('other', ['--batch-size', '8', '--init', join(dir, 'models', 'other')]);
    const [one, z3, other] = [losses('one'), losses('z3'), losses('other')];
    assert.equal(one.length, 3);
    assert.ok(maxRelDiff(one, other) > 1e-3, 'the folder decides the start');
    assert.ok(maxRelDiff(z3, one) < 1e-5, `losses ${z3} vs ${one}`);
  });
});
