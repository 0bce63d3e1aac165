import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ProcessGroup } from '../../../src/comm/process_group.js';
import { readSafetensors } from '../../../src/nn/interchange/safetensors.js';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { createModel, llamaSpec } from '../../../src/nn/models/index.js';
import { ExpertParallelStrategy, expertOf } from '../../../src/train/strategies/expert_parallel.js';
import { createClusterStrategy } from '../../../src/train/strategies/registry.js';
import { maxRelDiff, rankZeroLosses, runCliProcess, tempDir } from '../../helpers/cluster.js';

/**
 * `train --workers W --expert-parallel E` on mixtral-tiny's shape with real processes: expert groups
 * of E ranks split each block's 8 experts (all-to-all dispatch), data parallel across all W. Every
 * step's loss and the saved model (written once, by rank 0, whole) equal one process at the global
 * batch within 1e-5. The model comes from a folder whose router_aux_loss_coef is 0: the
 * load-balancing loss is a statistic of each rank's own tokens (as under plain data parallelism),
 * which one process at the whole batch computes over all of them. Refusals name the flag and values.
 */
let dir = '';
before(() => {
  dir = tempDir('expert-parallel');
  const spec = llamaSpec('mixtral-tiny', 64, 16);
  const noAux = { ...spec, moe: { ...spec.moe!, auxLossCoef: 0 } };
  saveFolder(join(dir, 'init'), createModel(noAux, 9), noAux);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const losses = (name: string): number[] => rankZeroLosses(join(dir, name));

async function train(name: string, args: string[]): Promise<void> {
  const exit = await runCliProcess([
    'train', '--init', join(dir, 'init'), '--dataset', 'synthetic_text', '--context', '16', '--max-steps', '2', '--eval-every', '0', '--optimizer', 'sgd', '--lr', '0.5',
    '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', name, '--save', join(dir, `${name}.safetensors`), ...args,
  ], { timeoutMs: 120_000 });
  assert.equal(exit.code, 0, exit.stderr);
}

function weights(name: string): Map<string, Float32Array> {
  const { tensors } = readSafetensors(join(dir, `${name}.safetensors`));
  return new Map([...tensors].map(([n, t]) => {
    assert.equal(t.dtype, 'F32', n);
    return [n, new Float32Array(Uint8Array.from(t.bytes).buffer)];
  }));
}

describe('expert parallelism through train --workers', { timeout: 200_000 }, () => {
  for (const [W, E] of [[2, 2], [4, 2]]) {
    it(`--workers ${W} --expert-parallel ${E}: every step's loss and the saved model equal one process at the global batch (1e-5)`, async () => {
      const [ep, one] = [`ep${W}x${E}`, `one${W}`];
      await Promise.all([
        train(ep, ['--workers', String(W), '--expert-parallel', String(E), '--batch-size', '2']),
        train(one, ['--batch-size', String(2 * W)]),
      ]);
      const [got, want] = [losses(ep), losses(one)];
      assert.equal(want.length, 2);
      want.forEach((l, step) => assert.ok(Math.abs(got[step] - l) <= 1e-5 * l, `step ${step}: ${got[step]} vs ${l}`));
      const [a, b] = [weights(ep), weights(one)];
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      assert.ok([...a.keys()].some((n) => expertOf(n) === 7), 'the saved model holds every expert');
      for (const [n, w] of b) assert.ok(maxRelDiff(a.get(n)!, w) < 1e-5, `${n} differs by ${maxRelDiff(a.get(n)!, w)}`);
    });
  }
});

describe('--expert-parallel refusals', () => {
  const group = (size: number): ProcessGroup => ({ size, rank: 0 }) as ProcessGroup;
  it('names the flag and the values', () => {
    assert.throws(() => new ExpertParallelStrategy(group(3), 2), /--expert-parallel 2: --workers 3 is not a multiple of it/);
    const mixtral = llamaSpec('mixtral-tiny', 64, 16);
    assert.throws(() => new ExpertParallelStrategy(group(3), 3).buildModel(mixtral, 1, 'mixtral-tiny'), /--expert-parallel 3: mixtral-tiny's 8 experts do not split over 3 ranks/);
    assert.throws(() => new ExpertParallelStrategy(group(2), 2).buildModel(llamaSpec('llama-tiny', 64, 16), 1, 'llama-tiny'), /--expert-parallel 2: llama-tiny has no experts/);
    const o = { checksumEvery: 0, peerTimeoutMs: 1000, expertParallel: 2 };
    assert.throws(() => createClusterStrategy('diloco', group(2), o), /--expert-parallel 2: runs with --strategy allreduce, not diloco/);
    assert.throws(() => createClusterStrategy('allreduce', group(4), { ...o, tensorParallel: 2 }), /--expert-parallel 2 cannot be combined with --tensor-parallel 2/);
    assert.throws(() => createClusterStrategy('allreduce', group(4), { ...o, zero: 1 }), /--expert-parallel 2 cannot be combined with --zero 1/);
  });
});
