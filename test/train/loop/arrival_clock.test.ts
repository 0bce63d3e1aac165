import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StepRecord } from '../../../src/metrics/records.js';
import { ArrivalClock } from '../../../src/train/loop/shares.js';

/** A step from `start` whose forward+backward takes `fb` ms, then `waitMs` blocked and `rest` ms of exchange and optimizer. */
function step(start: number, fb: number, waitMs: number, rest: number): StepRecord {
  const end = start + fb + waitMs + rest;
  return {
    step: 0, epoch: 0, rank: 0, loss: 0, samples: 8, lr: 0, computeMs: fb, commMs: rest, waitMs, time: 0,
    marks: { start, reduce: start + fb, optimizer: end, afterStep: end, end, exchange: { waitMs, commMs: rest } },
  };
}

describe('ArrivalClock', () => {
  it('splits a rank\'s time between barriers into forward+backward and the rest, leaving out waits and evaluations', () => {
    const clock = new ArrivalClock();
    assert.deepEqual(clock.split(step(0, 10, 5, 7)), [10, 7]);
    // 3 ms between steps (metrics, the next batch) count as fixed work; a 50 ms evaluation does not.
    clock.exclude(50);
    assert.deepEqual(clock.split(step(22 + 3 + 50, 12, 4, 6)).map((x) => Math.round(x * 1e9) / 1e9), [12, 9]);
  });
});
