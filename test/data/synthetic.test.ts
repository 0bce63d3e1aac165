import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { syntheticClassification, syntheticRegression } from '../../src/data/synthetic.js';

describe('synthetic datasets', () => {
  it('regression: shapes, determinism, seed sensitivity, prefix stability', () => {
    const opts = { seed: 5, samples: 200, inputDim: 8, outputDim: 3, noise: 0.05 };
    const a = syntheticRegression(opts);
    assert.equal(a.task, 'regression');
    assert.equal(a.size, 200);
    assert.deepEqual(a.inputShape, [8]);
    assert.deepEqual(a.targetShape, [3]);
    assert.equal(a.inputs.length, 1600);
    assert.equal(a.targets.length, 600);
    assert.deepEqual(syntheticRegression(opts).targets, a.targets);
    assert.notDeepEqual(syntheticRegression({ ...opts, seed: 6 }).targets, a.targets);
    const small = syntheticRegression({ ...opts, samples: 50 });
    assert.deepEqual(small.targets, a.targets.subarray(0, 150));
    for (const v of a.targets) assert.ok(Number.isFinite(v));
  });

  it('regression: noiseless targets vary and stay bounded', () => {
    const d = syntheticRegression({ seed: 1, samples: 2000, inputDim: 4, outputDim: 1, noise: 0 });
    // The linear part has variance ≈ 1 and tanh(·) ≤ 1 in size, so the target varies and is bounded.
    let sum = 0;
    let sumSq = 0;
    for (const y of d.targets) {
      sum += y;
      sumSq += y * y;
    }
    const variance = sumSq / d.size - (sum / d.size) ** 2;
    assert.ok(variance > 0.5 && variance < 5, `variance ${variance}`);
  });

  it('classification: balanced labels, deterministic, classes separated', () => {
    const opts = { seed: 3, samples: 300, inputShape: [1, 4, 4], numClasses: 3 };
    const d = syntheticClassification(opts);
    assert.equal(d.task, 'classification');
    assert.deepEqual(d.inputShape, [1, 4, 4]);
    assert.equal(d.inputs.length, 300 * 16);
    const counts = [0, 0, 0];
    for (const l of d.labels) counts[l]++;
    assert.deepEqual(counts, [100, 100, 100]);
    assert.deepEqual(syntheticClassification(opts).inputs, d.inputs);
    assert.notDeepEqual(syntheticClassification({ ...opts, seed: 4 }).labels, d.labels);
    // Nearest class centroid (estimated from the data) classifies well above chance.
    const centroids = new Float64Array(3 * 16);
    for (let i = 0; i < d.size; i++) for (let k = 0; k < 16; k++) centroids[d.labels[i] * 16 + k] += d.inputs[i * 16 + k] / 100;
    let correct = 0;
    for (let i = 0; i < d.size; i++) {
      let best = -1;
      let bestDist = Infinity;
      for (let c = 0; c < 3; c++) {
        let dist = 0;
        for (let k = 0; k < 16; k++) dist += (d.inputs[i * 16 + k] - centroids[c * 16 + k]) ** 2;
        if (dist < bestDist) [best, bestDist] = [c, dist];
      }
      if (best === d.labels[i]) correct++;
    }
    assert.ok(correct / d.size > 0.9, `accuracy ${correct / d.size}`);
  });
});
