import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { maxRelDiff, readSavedParams, runCliProcess, tempDir } from '../../helpers/cluster.js';

/**
 * `train --workers 2 --zero 3` with real processes on 127.0.0.1: each rank keeps a shard of
 * gpt2-tiny's parameters, gathers each block for its forward and backward, and every step's loss
 * equals one process's at the global batch; the leader's mid-run and final evaluations and --save
 * see the whole model (gathered to rank 0), equal to one process's.
 */
let dir = '';
before(() => {
  dir = tempDir('zero-cli');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every step's loss per rank, and the evaluations, from the run's metrics.jsonl. */
function records(name: string): { losses: Map<number, number[]>; evals: number[] } {
  const losses = new Map<number, number[]>();
  const evals: number[] = [];
  for (const line of readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { type?: string; rank?: number; step?: number; loss?: number; test_loss?: number };
    if (r.test_loss !== undefined) evals.push(r.test_loss);
    if (r.rank === undefined || r.loss === undefined || r.step === undefined) continue;
    const list = losses.get(r.rank) ?? [];
    list[r.step] = r.loss;
    losses.set(r.rank, list);
  }
  return { losses, evals };
}

async function train(name: string, args: string[]): Promise<void> {
  const exit = await runCliProcess([
    'train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '32', '--max-steps', '4', '--eval-every', '2',
    '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', name, '--save', join(dir, `${name}.smol`), ...args,
  ], { timeoutMs: 120_000 });
  assert.equal(exit.code, 0, exit.stderr);
}

describe('ZeRO through train --workers', { timeout: 150_000 }, () => {
  it('2 workers --zero 3 give every step one process\'s loss, and the same evaluations and saved model', async () => {
    await Promise.all([train('z3', ['--workers', '2', '--zero', '3', '--batch-size', '4']), train('one', ['--batch-size', '8'])]);
    const one = records('one');
    const z3 = records('z3');
    assert.equal(one.losses.get(0)!.length, 4);
    for (const rank of [0, 1]) {
      const got = z3.losses.get(rank);
      assert.ok(got && got.length === 4, `rank ${rank} recorded ${got?.length ?? 0} steps`);
      got.forEach((loss, step) => assert.ok(Math.abs(loss - one.losses.get(0)![step]) <= 1e-5 * one.losses.get(0)![step], `rank ${rank} step ${step}: ${loss} vs ${one.losses.get(0)![step]}`));
    }
    assert.equal(z3.evals.length, one.evals.length);
    assert.ok(z3.evals.length >= 2, 'a mid-run and a final evaluation');
    z3.evals.forEach((e, i) => assert.ok(Math.abs(e - one.evals[i]) <= 1e-5 * one.evals[i], `evaluation ${i}: ${e} vs ${one.evals[i]}`));
    const saved = readSavedParams(join(dir, 'z3.smol'));
    const reference = readSavedParams(join(dir, 'one.smol'));
    assert.deepEqual(saved.header.params, reference.header.params, 'the whole model\'s layout');
    assert.ok(maxRelDiff(saved.params, reference.params) < 1e-5, `saved parameters differ by ${maxRelDiff(saved.params, reference.params)}`);
  });

  it('checkpoints of 2 workers --zero 2 resume on 4 workers (resharded) and take the uninterrupted run\'s last step', async () => {
    const ckpt = join(dir, 'ckpt');
    const run = async (name: string, workers: number, extra: string[]): Promise<void> => {
      const exit = await runCliProcess([
        'train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '32', '--max-steps', '4', '--zero', '2', '--workers', String(workers),
        '--batch-size', String(8 / workers), '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', name, ...extra,
      ], { timeoutMs: 120_000 });
      assert.equal(exit.code, 0, exit.stderr);
    };
    await run('first', 2, ['--checkpoint-every', '2', '--checkpoint-dir', ckpt]);
    for (const r of [0, 1]) rmSync(join(ckpt, `rank-${r}`, 'ckpt-00000004.smolckpt'));
    await run('resumed', 4, ['--resume', ckpt, '--checkpoint-dir', join(dir, 'ckpt-resumed')]);
    const first = records('first').losses.get(0)!;
    const resumed = records('resumed').losses;
    for (const rank of [0, 1, 2, 3]) {
      const got = resumed.get(rank)!;
      assert.equal(got[1], undefined, `rank ${rank} took step 1 again: it did not resume`);
      assert.ok(Math.abs(got[3] - first[3]) <= 1e-5 * first[3], `rank ${rank} step 3: ${got[3]} vs ${first[3]}`);
    }
  });

  it('refuses --zero for a strategy that does not support it, naming the flag', async () => {
    const base = ['train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--max-steps', '1', '--timeout', '30', '--experiments-dir', dir];
    const ps = await runCliProcess([...base, '--workers', '2', '--strategy', 'ps', '--zero', '1'], { timeoutMs: 60_000 });
    assert.notEqual(ps.code, 0);
    assert.match(ps.stderr, /--zero 1: runs with --strategy allreduce, not ps/);
    const one = await runCliProcess([...base, '--zero', '2'], { timeoutMs: 60_000 });
    assert.notEqual(one.code, 0);
    assert.match(one.stderr, /--zero 2: shards the model over the workers; needs --workers 2 or more/);
    const bad = await runCliProcess([...base, '--workers', '2', '--zero', '4'], { timeoutMs: 60_000 });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--zero <stage>' argument '4' is invalid\. expected a ZeRO stage: 1, 2 or 3/);
  });
});
