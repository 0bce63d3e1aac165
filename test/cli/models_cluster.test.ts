import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSafetensors, toFloat32 } from '../../src/nn/interchange/safetensors.js';
import { runCliProcess, tempDir } from '../helpers/cluster.js';

/**
 * The issue-10 models on a local cluster: `train --workers 2` with gpt2-tiny on synthetic_text and
 * resnet18 on synthetic_image, against one process on the same global batch. GPT-2 (no batch
 * statistics) matches one process to float rounding. ResNet's BatchNorm normalises each rank's half
 * batch with that half's statistics, as torch DDP does by default (no SyncBatchNorm), so its
 * trajectory is not one process's: its parameters are compared with a documented tolerance, and the
 * running statistics (rank 0's own) are left out. See docs/MODELS.md.
 */
let dir = '';
before(() => {
  dir = tempDir('models-cluster');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Largest |a − b| over the float tensors both files hold (running statistics excluded). */
function maxParamDiff(a: string, b: string): { diff: number; name: string } {
  const ta = readSafetensors(a).tensors;
  const tb = readSafetensors(b).tensors;
  let diff = 0;
  let name = '';
  for (const [n, t] of ta) {
    if (t.dtype !== 'F32' || n.includes('running_')) continue;
    const x = toFloat32(a, n, t);
    const y = toFloat32(b, n, tb.get(n)!);
    for (let i = 0; i < x.length; i++) {
      if (Math.abs(x[i] - y[i]) > diff) [diff, name] = [Math.abs(x[i] - y[i]), n];
    }
  }
  return { diff, name };
}

async function train(name: string, args: string[]): Promise<string> {
  const save = join(dir, `${name}.safetensors`);
  const exit = await runCliProcess([
    'train', ...args, '--max-steps', '2', '--threads', '1', '--timeout', '60', '--checksum-every', '1',
    '--experiments-dir', dir, '--name', name, '--save', save,
  ], { timeoutMs: 150_000 });
  assert.equal(exit.code, 0, exit.stderr);
  return save;
}

describe('new model families on a local cluster (2 workers vs one process)', { timeout: 200_000 }, () => {
  it('gpt2-tiny on synthetic_text: 2 workers × 4 sequences equal one process × 8 (AdamW, 1e-4)', async () => {
    const common = ['--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '32'];
    const [two, one] = await Promise.all([
      train('gpt2-two', [...common, '--workers', '2', '--batch-size', '4']),
      train('gpt2-one', [...common, '--batch-size', '8']),
    ]);
    const { diff, name } = maxParamDiff(two, one);
    assert.ok(diff < 1e-4, `max parameter difference ${diff} in ${name}`);
  });

  it('resnet18 on synthetic_image: 2 workers run in lock-step; per-rank BatchNorm statistics keep them within 0.1 of one process', async () => {
    const common = ['--model', 'resnet18', '--width', '8', '--dataset', 'synthetic_image'];
    const [two, one] = await Promise.all([
      train('resnet-two', [...common, '--workers', '2', '--batch-size', '8']),
      train('resnet-one', [...common, '--batch-size', '16']),
    ]);
    const { diff, name } = maxParamDiff(two, one);
    // Not float rounding: the half-batch statistics change the gradients (measured ≈ 0.02 after 3 steps).
    assert.ok(diff > 1e-4 && diff < 0.1, `max parameter difference ${diff} in ${name}`);
  });
});
