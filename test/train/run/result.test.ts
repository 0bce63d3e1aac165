import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RankTotals } from '../../../src/metrics/result_file.js';
import { clusterTrainSeconds, totalsVector, unpackTotals } from '../../../src/train/run/result.js';
import type { TrainOutcome } from '../../../src/train/loop/loop.js';

const rank = (r: number, trainSeconds: number, evalMs: number, afterEvalWaitMs: number): RankTotals => ({
  rank: r, samples: 100, train_seconds: trainSeconds, compute_ms: 0, comm_ms: 0, wait_ms: afterEvalWaitMs, eval_ms: evalMs, after_eval_wait_ms: afterEvalWaitMs,
});

test('the cluster\'s training time leaves out a rank\'s wait for the leader\'s evaluations', () => {
  // Rank 0 evaluated for 3 s in all; rank 1 met it 3.2 s late in the steps after (0.2 s of that the ordinary wait).
  assert.ok(Math.abs(clusterTrainSeconds([rank(0, 5, 3000, 0), rank(1, 8.2, 0, 3200)]) - 5.2) < 1e-12);
  // A wait after an evaluation beyond the evaluations' time is a step's own wait, and stays.
  assert.equal(clusterTrainSeconds([rank(0, 5, 1000, 0), rank(1, 9, 0, 4000)]), 8);
  // No evaluations: the longest rank's time, as before.
  assert.equal(clusterTrainSeconds([rank(0, 5, 0, 0), rank(1, 6, 0, 0)]), 6);
  // Totals from files written before these fields.
  assert.equal(clusterTrainSeconds([{ rank: 0, samples: 1, train_seconds: 4, compute_ms: 0, comm_ms: 0, wait_ms: 0 }]), 4);
});

test('the per-rank totals travel with the evaluation time, the wait after evaluations and the device', () => {
  const outcome = { trainSamples: 96, trainSeconds: 2.5, totals: { computeMs: 1, commMs: 2, waitMs: 3 }, evalMs: 40, afterEvalWaitMs: 36 } as TrainOutcome;
  const two = new Float32Array([...totalsVector(outcome), ...totalsVector({ ...outcome, evalMs: 0 }, 'webgpu')]);
  assert.deepEqual(unpackTotals(two), [
    { rank: 0, samples: 96, train_seconds: 2.5, compute_ms: 1, comm_ms: 2, wait_ms: 3, eval_ms: 40, after_eval_wait_ms: 36, device: 'cpu' },
    { rank: 1, samples: 96, train_seconds: 2.5, compute_ms: 1, comm_ms: 2, wait_ms: 3, eval_ms: 0, after_eval_wait_ms: 36, device: 'webgpu' },
  ]);
});
