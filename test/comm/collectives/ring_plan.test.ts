import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_LANES, pieceRange, planRing } from '../../../src/comm/collectives/ring_plan.js';

test('ring plan: pieces tile the buffer exactly, for odd lengths and lengths below n', () => {
  for (const n of [1, 2, 3, 5]) {
    for (const length of [0, 1, 2, 4, 7, 1001, 1 << 20]) {
      for (const chunk of [1, 16, 1 << 18]) {
        const plan = planRing(length, n, chunk);
        assert.ok(plan.lanes >= 1 && plan.lanes <= MAX_LANES);
        let next = 0;
        for (let seg = 0; seg < n; seg++) {
          for (let lane = 0; lane < plan.lanes; lane++) {
            const [a, b] = pieceRange(plan, seg, lane);
            assert.equal(a, next, `n ${n} len ${length} chunk ${chunk}`);
            assert.ok(b - a <= plan.maxPiece);
            next = b;
          }
        }
        assert.equal(next, length);
      }
    }
  }
});

test('ring plan: pieces are at least one chunk, and at most MAX_LANES per segment', () => {
  assert.equal(planRing(1 << 20, 2, 1 << 20).lanes, 1); // 512K segments, 1M chunk
  assert.equal(planRing(4 << 20, 4, 1 << 18).lanes, 4);
  assert.equal(planRing(64 << 20, 2, 1 << 18).lanes, MAX_LANES);
});
