import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planStages } from '../../../src/parallel/pipeline/stage_plan.js';

test('equal layers on equal nodes are cut evenly', () => {
  const plan = planStages([1, 1, 1, 1, 1, 1, 1, 1], [{ speed: 1 }, { speed: 1 }, { speed: 1 }, { speed: 1 }]);
  assert.deepEqual(plan.ranges, [[0, 2], [2, 4], [4, 6], [6, 8]]);
  assert.deepEqual(plan.stageMs, [2, 2, 2, 2]);
});

test('a node slowed to half speed (CPU quota) gets half the layers', () => {
  const plan = planStages(new Array(9).fill(1), [{ speed: 1 }, { speed: 0.5 }, { speed: 1 }]);
  const [from, to] = plan.ranges[1];
  assert.equal(to - from, 2);
  assert.equal(Math.max(...plan.stageMs), 4);
});

test('measured per-layer times: the slowest stage is as fast as any cut allows', () => {
  // An embedding, four blocks, a costly head (GPT-2's shape).
  const ms = [1, 4, 4, 4, 4, 6];
  const plan = planStages(ms, [{ speed: 1 }, { speed: 1 }, { speed: 1 }]);
  assert.equal(Math.max(...plan.stageMs), 9);
  assert.deepEqual(plan.ranges, [[0, 3], [3, 5], [5, 6]]);
});

test('a node with less memory gets fewer layers even when it is fast', () => {
  const ms = [1, 1, 1, 1, 1, 1];
  const bytes = [100, 100, 100, 100, 100, 100];
  const plan = planStages(ms, [{ speed: 1, memoryBytes: 150 }, { speed: 1 }], bytes);
  assert.deepEqual(plan.ranges, [[0, 1], [1, 6]]);
});

test('impossible plans are refused with a reason', () => {
  assert.throws(() => planStages([1, 1], [{ speed: 1 }, { speed: 1 }, { speed: 1 }]), /--pipeline-stages 3 is more than the model's 2 layers/);
  assert.throws(() => planStages([1, 1], [{ speed: 1, memoryBytes: 10 }, { speed: 1, memoryBytes: 10 }], [20, 20]), /do not fit/);
  assert.throws(() => planStages([1, 1], [{ speed: 0 }, { speed: 1 }]), /node 0: speed/);
});
