/** Each sampler pinned on hand-made logits, and the seeded draw reproducible. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyLogitBias, applyPresenceFrequency, applyRepetitionPenalty, argmax, checkSampling, draw, minP, sampleToken, softmax, topK, topP } from '../../src/generate/sampling.js';
import { Rng } from '../../src/util/rng.js';

const L = (...xs: number[]): Float32Array => Float32Array.from(xs);
const kept = (l: Float32Array): number[] => [...l.keys()].filter((i) => l[i] !== -Infinity);

describe('sampling', () => {
  it('greedy takes the largest logit, the first of equal ones', () => {
    assert.equal(argmax(L(0.1, 2, -1, 2)), 1);
    assert.equal(sampleToken(L(0.1, 2, -1, 3), [], {}, new Rng(0)), 3);
    // A NaN is never taken (nothing compares above it, and it is above nothing), as before the best value was kept aside.
    assert.equal(argmax(L(NaN, 1, 2)), 0);
    assert.equal(argmax(L(1, NaN, 2)), 2);
    assert.equal(argmax(L()), 0);
    // A vocabulary's row (the cpu kernels' rowArgmax where the backend has one): the same answers.
    const row = new Float32Array(50_000).fill(-1);
    row[0] = NaN;
    assert.equal(argmax(row), 0);
    row[0] = 0;
    [row[777], row[40_000], row[41_000]] = [5, 7, 7];
    row[39_999] = NaN;
    assert.equal(argmax(row), 40_000);
  });

  it('plain greedy reads the row in place; anything that changes the logits works on a copy', () => {
    const row = L(1, 2, 3);
    assert.equal(sampleToken(row, [2], { temperature: 0 }, new Rng(0)), 2);
    assert.equal(sampleToken(row, [2], { repetitionPenalty: 4 }, new Rng(0)), 1);
    assert.deepEqual([...row], [1, 2, 3], 'the penalty changed a copy');
  });

  it('the repetition penalty divides positive logits and multiplies negative ones, once per seen token', () => {
    assert.deepEqual([...applyRepetitionPenalty(L(4, -2, 1), [0, 1, 1], 2)], [2, -4, 1]);
    // Greedy flips once the favourite has been seen.
    assert.equal(sampleToken(L(3, 2), [0], { repetitionPenalty: 2 }, new Rng(0)), 1);
  });

  it('presence and frequency penalties count the generated tokens only: frequency × count, presence once', () => {
    assert.deepEqual([...applyPresenceFrequency(L(4, 4, 4, 4), [1, 2, 2, 2], 0.5, 0.25)], [4, 4 - 0.25 - 0.5, 4 - 0.75 - 0.5, 4]);
    assert.deepEqual([...applyPresenceFrequency(L(1, 2), [1], -1, 0)], [1, 3]);
    // Greedy flips once the favourite has been generated twice; the prompt's tokens (seen) do not count.
    assert.equal(sampleToken(L(3, 2.5), [0, 0], { frequencyPenalty: 0.3 }, new Rng(0), [0]), 0);
    assert.equal(sampleToken(L(3, 2.5), [0, 0], { frequencyPenalty: 0.3 }, new Rng(0), [0, 0]), 1);
    assert.equal(sampleToken(L(3, 2.5), [0], { presencePenalty: 0.6 }, new Rng(0), [0]), 1);
  });

  it('logit bias adds to the named logits before anything else; -100 bans a token', () => {
    assert.deepEqual([...applyLogitBias(L(1, 2, 3), [[0, 5], [2, -1], [9, 1]])], [6, 2, 2]);
    assert.equal(sampleToken(L(1, 2, 3), [], { logitBias: [[2, -100]] }, new Rng(0)), 1);
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) assert.notEqual(sampleToken(L(5, 0, 0), [], { temperature: 1, logitBias: [[0, -100]] }, rng), 0);
    // Before the repetition penalty (vLLM's order): (1 − 0.5) / 4 = 0.125 beats 0; after it, 1 / 4 − 0.5 would not.
    assert.equal(sampleToken(L(1, 0), [0], { logitBias: [[0, -0.5]], repetitionPenalty: 4 }, new Rng(0)), 0);
  });

  it('top-k keeps the k largest (ties at the k-th kept)', () => {
    assert.deepEqual(kept(topK(L(1, 5, 3, 4), 2)), [1, 3]);
    assert.deepEqual(kept(topK(L(1, 3, 3, 0), 2)), [1, 2]);
    assert.deepEqual(kept(topK(L(1, 2), 0)), [0, 1]);
  });

  it('top-p keeps the most likely tokens until their mass reaches p, at least one', () => {
    const l = L(...[0.5, 0.3, 0.15, 0.05].map(Math.log));
    assert.deepEqual(kept(topP(Float32Array.from(l), 0.75)), [0, 1]);
    assert.deepEqual(kept(topP(Float32Array.from(l), 0.85)), [0, 1, 2]);
    assert.deepEqual(kept(topP(Float32Array.from(l), 0.01)), [0]);
  });

  it('min-p drops tokens below minP × the top probability', () => {
    const l = L(...[0.5, 0.3, 0.15, 0.05].map(Math.log));
    assert.deepEqual(kept(minP(Float32Array.from(l), 0.5)), [0, 1]);
    assert.deepEqual(kept(minP(Float32Array.from(l), 0.2)), [0, 1, 2]);
  });

  it('draws follow the softmax, never a masked token, the same for the same seed', () => {
    const l = L(Math.log(0.7), Math.log(0.2), Math.log(0.1), -Infinity);
    const rng = new Rng(5);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[draw(l, rng)]++;
    assert.equal(counts[3], 0);
    [0.7, 0.2, 0.1].forEach((p, i) => assert.ok(Math.abs(counts[i] / 20000 - p) < 0.015, `token ${i}: ${counts[i] / 20000}`));
    const seq = (seed: number): number[] => { const r = new Rng(seed); return Array.from({ length: 30 }, () => sampleToken(L(1, 1, 1, 1), [], { temperature: 1 }, r)); };
    assert.deepEqual(seq(9), seq(9));
    assert.notDeepEqual(seq(9), seq(10));
  });

  it('temperature sharpens or flattens the distribution; top-k 1 is greedy', () => {
    const p = (t: number): number => softmax(Float32Array.from(L(2, 1), (x) => x / t))[0];
    assert.ok(p(0.5) > p(1) && p(1) > p(2));
    const rng = new Rng(1);
    for (let i = 0; i < 50; i++) assert.equal(sampleToken(L(0, 1, 0.9), [], { temperature: 5, topK: 1 }, rng), 1);
  });

  it('refuses options out of range, naming them', () => {
    assert.throws(() => checkSampling({ temperature: -1 }), /temperature must be >= 0, got -1/);
    assert.throws(() => checkSampling({ topK: 1.5 }), /topK must be an integer >= 0/);
    assert.throws(() => checkSampling({ topP: 0 }), /topP must be in \(0, 1\]/);
    assert.throws(() => checkSampling({ minP: 2 }), /minP must be in \[0, 1\]/);
    assert.throws(() => checkSampling({ repetitionPenalty: 0 }), /repetitionPenalty must be > 0/);
    assert.throws(() => checkSampling({ presencePenalty: NaN }), /presencePenalty must be a finite number/);
    assert.throws(() => checkSampling({ logitBias: [[-1, 2]] }), /logitBias token id must be an integer >= 0, got -1/);
  });
});
