import assert from 'node:assert/strict';
import { test } from 'node:test';
import { placeStages } from '../../../src/parallel/pipeline/placement.js';

const base = { parameters: [10, 10, 10, 10, 10, 10], activationFloats: [4, 4, 4, 4, 4, 4], bytesPerParameter: 16, liveMicroBatches: 2 };

test('equal ranks: reference times are the median, speeds 1, the cut is even', () => {
  const p = placeStages({ ...base, ranks: [{ layerMs: [1, 2, 2, 2, 2, 1], memoryBytes: 1e9 }, { layerMs: [1, 2, 2, 2, 2, 1], memoryBytes: 1e9 }], stages: 2, stageOf: [0, 1] });
  assert.deepEqual(p.rankSpeed, [1, 1]);
  assert.deepEqual(p.ranges, [[0, 3], [3, 6]]);
  assert.deepEqual(p.layerBytes, new Array(6).fill(10 * 16 + 4 * 4 * 2));
});

test('a rank measuring every layer 3× slower gets fewer layers', () => {
  const ms = [1, 1, 1, 1, 1, 1];
  const p = placeStages({ ...base, ranks: [{ layerMs: ms, memoryBytes: 1e9 }, { layerMs: ms.map((x) => 3 * x), memoryBytes: 1e9 }], stages: 2, stageOf: [0, 1] });
  assert.ok(p.rankSpeed[1] < p.rankSpeed[0] / 2.9);
  const [a, b] = p.ranges.map(([from, to]) => to - from);
  assert.ok(b < a, `slow stage ${b} layers, fast ${a}`);
});

test('a stage on several replicas takes its slowest rank\'s speed and smallest memory', () => {
  const ms = [1, 1, 1, 1, 1, 1];
  const ranks = [
    { layerMs: ms, memoryBytes: 1e9 }, { layerMs: ms, memoryBytes: 1e9 },
    { layerMs: ms, memoryBytes: 1e9 }, { layerMs: ms.map((x) => 2 * x), memoryBytes: 400 },
  ];
  const p = placeStages({ ...base, ranks, stages: 2, stageOf: [0, 1, 0, 1] });
  assert.equal(p.nodes[1].memoryBytes, 400);
  assert.ok(p.nodes[1].speed < p.nodes[0].speed);
  // 400 bytes hold two layers of 176 bytes: the memory, not only the speed, bounds stage 1.
  assert.deepEqual(p.ranges, [[0, 4], [4, 6]]);
});

test('a rank that measured another number of layers is refused, naming it', () => {
  assert.throws(() => placeStages({ ...base, ranks: [{ layerMs: [1, 1, 1, 1, 1, 1], memoryBytes: 1e9 }, { layerMs: [1], memoryBytes: 1e9 }], stages: 2, stageOf: [0, 1] }), /rank 1 measured 1 layers, the model has 6/);
});
