import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BalanceModel, makePolicy } from '../../src/balance/index.js';
import { arrivalShares, boundedStep, predictedStepMs, probit, speedShares } from '../../src/balance/shares.js';

const close = (a: readonly number[], b: readonly number[], tol = 1e-9): void =>
  assert.ok(a.every((x, i) => Math.abs(x - b[i]) <= tol), `${a.join(', ')} vs ${b.join(', ')}`);

describe('share arithmetic', () => {
  it('shares follow speed: a rank 3× slower per sample gets a quarter', () => {
    close(speedShares([1, 3], 0), [0.75, 0.25]);
    close(speedShares([2, 2, 4], 0), [0.4, 0.4, 0.2]);
  });

  it('no share falls below the floor, and they still sum to 1', () => {
    const s = speedShares([1, 100], 0.05);
    close(s, [0.95, 0.05]);
  });

  it('an unmeasured shard is treated as typical, not as infinitely fast', () => {
    close(speedShares([NaN, 2], 0), [0.5, 0.5]);
  });

  it('fixed per-step time: shares at which every shard reaches the barrier together', () => {
    // 256 samples; shard 0: 10 ms + 0.05 ms/sample, shard 1: 16 ms + 0.15 ms/sample.
    const x = arrivalShares([0.05, 0.15], [10, 16], 256, 0);
    const arrive = (i: number): number => [10, 16][i] + [0.05, 0.15][i] * 256 * x[i];
    assert.ok(Math.abs(arrive(0) - arrive(1)) < 1e-9, `arrivals ${arrive(0)} vs ${arrive(1)}`);
    assert.ok(x[1] < 0.25, `the slow shard's fixed time costs it samples: ${x}`);
    assert.ok(Math.abs(x[0] + x[1] - 1) < 1e-12);
    // Its fixed time alone exceeds the other's whole step: held at the floor.
    close(arrivalShares([0.05, 0.15], [10, 40], 256, 0.05), [0.95, 0.05]);
  });

  it('jitter: a slow shard that varies from step to step is planned to arrive early', () => {
    const steady = arrivalShares([1, 3], [0, 0], 256, 0, [0, 0]);
    close(steady, [0.75, 0.25]);
    const jittery = arrivalShares([1, 3], [0, 0], 256, 0, [0, 40]);
    // Its mean arrival is planned jitter × probit(3/4) ≈ 0.674 × 40 ms before the steady one's.
    const arrive = (x: number[], i: number): number => [1, 3][i] * 256 * x[i];
    assert.ok(Math.abs(arrive(jittery, 0) - arrive(jittery, 1) - 40 * probit(0.75)) < 1e-6);
    assert.ok(Math.abs(probit(0.75) - 0.6745) < 1e-3 && Math.abs(probit(0.025) + 1.96) < 1e-3);
  });

  it('a bounded step moves no share by more than the bound and keeps the sum', () => {
    const s = boundedStep([0.5, 0.3, 0.2], [0.8, 0.1, 0.1], 0.1);
    assert.ok(Math.abs(s[0] - 0.6) < 1e-12);
    assert.ok(Math.abs(s.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    close(boundedStep([0.5, 0.5], [0.55, 0.45], 0.1), [0.55, 0.45]);
  });
});

describe('policies', () => {
  const measured = { windowMean: [1, 3], trend: [1, 3] };

  it('proportional decides once, after calibration', () => {
    const p = makePolicy('proportional', { rebalanceInterval: 10 });
    const steps = [...Array(100).keys()].filter((s) => p.decidesAt(s));
    assert.deepEqual(steps, [5]);
    const d = p.decide(5, [0.5, 0.5], measured)!;
    close(d.shares, [0.75, 0.25]);
    assert.match(d.reason, /calibration over 4 timed steps: times 1.00, 3.00 ms\/sample/);
  });

  it('dynamic decides every K steps from the trend', () => {
    const p = makePolicy('dynamic', { rebalanceInterval: 10 });
    assert.deepEqual([...Array(35).keys()].filter((s) => p.decidesAt(s)), [10, 20, 30]);
    close(p.decide(10, [0.5, 0.5], { windowMean: [9, 9], trend: [1, 3] })!.shares, [0.75, 0.25]);
    assert.equal(p.decide(20, [0.75, 0.25], measured), null, 'no change: no decision');
  });

  it('the models: speed ignores per-step work and jitter, arrival counts the work, shortest also the jitter', () => {
    const m = { windowMean: [1, 3], trend: [1, 3], fixedWindowMean: [2, 30], fixedTrend: [2, 30], jitterMs: [1, 20], globalBatch: 64 };
    const shares = (model?: BalanceModel): number[] => makePolicy('dynamic', { rebalanceInterval: 10, ...(model ? { model } : {}) }).decide(10, [0.5, 0.5], m)!.shares;
    // A rank 3× slower per sample gets a quarter by speed.
    close(shares('speed'), [0.75, 0.25]);
    // Arrival: 2 + 64·x0 = 30 + 192·x1 with x0 + x1 = 1 → x1 = 36 / 256.
    close(shares('arrival'), [1 - 36 / 256, 36 / 256]);
    close(shares('shortest'), arrivalShares([1, 3], [2, 30], 64, 0.05, [1, 20]));
    close(shares(), shares('shortest'), 0);
    assert.ok(shares('shortest')[1] < shares('arrival')[1], 'the jittery rank is planned early');
  });

  it('hybrid calibrates, then moves by at most maxChange per rebalance', () => {
    const p = makePolicy('hybrid', { rebalanceInterval: 10, maxChange: 0.1 });
    assert.deepEqual([...Array(35).keys()].filter((s) => p.decidesAt(s)), [5, 10, 20, 30]);
    close(p.decide(5, [0.5, 0.5], measured)!.shares, [0.75, 0.25]);
    // The slow rank got 3× faster than the other: the target is 0.25/0.75, reached 0.1 at a time.
    const d = p.decide(10, [0.75, 0.25], { windowMean: [3, 1], trend: [3, 1] })!;
    close(d.shares, [0.65, 0.35]);
    assert.match(d.reason, /bounded/);
  });

  it('a step predicted from the measurements lasts until the last shard arrives', () => {
    // 64 samples; shard 0: 2 ms + 1 ms/sample, shard 1: 30 ms + 3 ms/sample.
    assert.equal(predictedStepMs([1, 3], [2, 30], 64, [0.5, 0.5]), 30 + 96);
    assert.equal(predictedStepMs([1, 3], [2, 30], 64, [0.75, 0.25]), Math.max(2 + 48, 30 + 48));
    // An unmeasured shard counts as a typical one.
    assert.equal(predictedStepMs([2, NaN], [0, 0], 10, [0.5, 0.5]), 10);
  });

  it('equal nodes measured a few percent apart keep their shares; a slow node still moves them', () => {
    // What equal nodes measured at batch 32 (docs/BALANCE.md): 6 % apart per sample, 0.16 ms per step.
    const equal = { windowMean: [0.165, 0.155], trend: [0.165, 0.155], fixedWindowMean: [1.45, 1.29], fixedTrend: [1.45, 1.29], jitterMs: [0.24, 0.21], globalBatch: 64 };
    for (const name of ['dynamic', 'hybrid'] as const) {
      const p = makePolicy(name, { rebalanceInterval: 10 });
      assert.equal(p.decide(10, [0.5, 0.5], equal), null, `${name}: a 3.5 % promise is no reason to move`);
      // Without the gain test the same measurements would have moved them.
      assert.ok(makePolicy(name, { rebalanceInterval: 10, minGain: 0 }).decide(10, [0.5, 0.5], equal), `${name} without minGain`);
    }
    const slow = { ...equal, trend: [0.165, 0.5], windowMean: [0.165, 0.5] };
    const d = makePolicy('dynamic', { rebalanceInterval: 10 }).decide(10, [0.5, 0.5], slow)!;
    assert.ok(d.shares[1] < 0.3, `the 3× slower shard's share: ${d.shares[1]}`);
  });
});
