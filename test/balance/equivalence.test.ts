import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { maxRelDiff, readJsonl, readSavedParams, runCliProcess, stepRecords, tempDir } from '../helpers/cluster.js';

// Integration (CLI, 127.0.0.1): 2 workers whose shares of the global batch change during the run
// compute exactly the steps of one process at the same global batch. Rank 1 is slowed by the
// `slow` fault so the dynamic policy really moves the shares; the tolerance is the allreduce test's.

const STEPS = 24;
const TOL = 1e-5;

describe('load-balanced allreduce equals one process at the same global batch (CLI, 127.0.0.1)', { timeout: 120_000 }, () => {
  let dir = '';
  const common = ['--max-steps', String(STEPS), '--seed', '3', '--threads', '1', '--checksum-every', '8', '--timeout', '20'];

  before(async () => {
    dir = tempDir('balance-eq');
    const runs = await Promise.all([
      runCliProcess(['train', '--workers', '1', '--batch-size', '64', ...common, '--name', 'single', '--experiments-dir', dir, '--save', join(dir, 'single.bin')], { timeoutMs: 60_000 }),
      runCliProcess([
        'train', '--workers', '2', '--batch-size', '32', ...common, '--name', 'balanced', '--experiments-dir', dir, '--save', join(dir, 'balanced.bin'),
        '--enable-load-balancing', '--load-balance-policy', 'dynamic', '--rebalance-interval', '4', '--fault', 'slow:rank=1:ms=15',
      ], { timeoutMs: 90_000 }),
    ]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the shares changed, every step still covered the global batch of 64, and each change is a rebalance event', () => {
    const metrics = join(dir, 'balanced', 'metrics.jsonl');
    const r0 = stepRecords(metrics, 0);
    const r1 = stepRecords(metrics, 1);
    assert.equal(r0.length, STEPS);
    assert.equal(r1.length, STEPS, 'both ranks take the same number of steps');
    for (let s = 0; s < STEPS; s++) assert.equal(r0[s].samples + r1[s].samples, 64, `step ${s}`);
    assert.ok(r1[STEPS - 1].samples < 32, `the slowed rank's share shrank: ${r1.map((r) => r.samples).join(',')}`);
    const events = readJsonl(join(dir, 'balanced', 'events.jsonl')).filter((e) => e.kind === 'rebalance');
    assert.ok(events.length >= 1);
    const first = events[0] as { step: number; old_shares: number[]; shares: number[]; reason: string };
    assert.deepEqual(first.old_shares, [0.5, 0.5]);
    assert.equal(r1[first.step].samples, Math.round(64 * first.shares[1]), 'applied at the step it was decided for');
    assert.equal(r1[first.step - 1].samples, 32);
    assert.match(first.reason, /ms\/sample/);
  });

  it('same per-step losses and final parameters as 1 process at batch 64', () => {
    const single = stepRecords(join(dir, 'single', 'metrics.jsonl'), 0).map((r) => r.loss!);
    const balanced = stepRecords(join(dir, 'balanced', 'metrics.jsonl'), 0).map((r) => r.loss!);
    const dl = Math.max(...balanced.map((x, i) => Math.abs(x - single[i]) / Math.abs(single[i])));
    const dp = maxRelDiff(readSavedParams(join(dir, 'balanced.bin')).params, readSavedParams(join(dir, 'single.bin')).params);
    assert.ok(dl <= TOL, `loss differs by ${dl.toExponential(2)}`);
    assert.ok(dp <= TOL, `parameters differ by ${dp.toExponential(2)}`);
    assert.ok(single[STEPS - 1] < single[0] * 0.8, 'training moved the parameters');
  });
});
