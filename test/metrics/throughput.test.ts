import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { StepRecord } from '../../src/metrics/records.js';
import { clusterSamples } from '../../src/metrics/throughput.js';

const step = (samples: number, info?: StepRecord['info']): StepRecord => ({
  step: 0, epoch: 0, rank: 0, loss: 1, samples, lr: 0.1, computeMs: 1, commMs: 1, waitMs: 1, time: 0, ...(info ? { info } : {}),
});

it('a training rank counts its samples × the training ranks; a ps server counts what its workers trained', () => {
  assert.equal(clusterSamples(step(16), 2), 32);
  // The ps server trains nothing and reports its workers' samples (2 workers × 16), whatever the world size.
  assert.equal(clusterSamples(step(0, { trained_samples: 32, contributors: 2 }), 3), 32);
  assert.equal(clusterSamples(step(0, { trained_samples: 0 }), 3), 0, 'a step nobody contributed to');
});
