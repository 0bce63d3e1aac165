/** Log-probabilities of a row of logits: log_softmax in float64, the top tokens by a partial selection, ties by id. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logSumExp, positionLogprobs, topIds } from '../../src/generate/logprobs.js';
import { Rng } from '../../src/util/rng.js';

describe('logprobs', () => {
  it('log_softmax of a row: logits minus log Σ exp, summing to probability 1, stable at large logits', () => {
    const row = Float32Array.from([1, 2, 3, -1]);
    const norm = Math.log([1, 2, 3, -1].reduce((s, x) => s + Math.exp(x), 0));
    assert.ok(Math.abs(logSumExp(row) - norm) < 1e-12);
    const p = positionLogprobs(row, 2, 0);
    assert.deepEqual([p.id, p.top], [2, []]);
    assert.ok(Math.abs(p.logprob - (3 - norm)) < 1e-12);
    const big = positionLogprobs(Float32Array.from([1000, 1000]), 0, 2);
    assert.ok(Math.abs(big.logprob - Math.log(0.5)) < 1e-12);
    assert.ok(Math.abs(positionLogprobs(Float32Array.from([-Infinity, 0]), 1, 0).logprob) < 1e-12);
  });

  it('the top k are the largest logits, most likely first, the lower id first among equals', () => {
    assert.deepEqual(topIds(Float32Array.from([0.5, 3, 3, -2, 7, 1]), 3), [4, 1, 2]);
    assert.deepEqual(topIds(Float32Array.from([1, 2]), 5), [1, 0]);
    assert.deepEqual(topIds(Float32Array.from([1, 2]), 0), []);
    const rng = new Rng(4);
    const row = Float32Array.from({ length: 500 }, () => Math.round(rng.normal() * 4) / 2);
    const sorted = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b);
    assert.deepEqual(topIds(row, 20), sorted.slice(0, 20));
    const p = positionLogprobs(row, 7, 20);
    assert.deepEqual(p.top.map((t) => t.id), sorted.slice(0, 20));
    const norm = logSumExp(row);
    p.top.forEach((t) => assert.equal(t.logprob, row[t.id] - norm));
  });
});
