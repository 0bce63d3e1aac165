/**
 * The rollout workers' lossless weight delta (src/rl/remote/weight_delta.ts) and its message
 * (messages.ts): applied onto the weights before, it gives the weights after bit for bit; after a
 * step at GRPO's learning rates it is under 0.7 of the arena; a delta whose parts disagree, or that
 * names another layout or size, is refused by name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeWeightDelta, encodeWeightDelta, encodeWeights } from '../../../src/rl/remote/messages.js';
import { applyWeightDelta, weightDelta } from '../../../src/rl/remote/weight_delta.js';
import { Rng } from '../../../src/util/rng.js';

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** Weights as a small model's (N(0, 0.02), norms at 1, some exact zeros) and the same after an Adam-sized step of `lr` on a share of them. */
function beforeAfter(n: number, lr: number, share: number, seed = 1): [Float32Array, Float32Array] {
  const r = new Rng(seed);
  const before = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 1 : i % 89 === 0 ? 0 : 0.02 * r.normal()));
  const after = before.slice();
  for (let i = 0; i < n; i++) if (r.uniform() < share) after[i] += lr * (r.uniform() < 0.5 ? -1 : 1) * (0.5 + r.uniform());
  return [before, after];
}

describe('weight delta', () => {
  it('turns the weights before into the weights after, bit for bit: small and large steps, sign flips, -0, the arena\'s last partial bitmap word', () => {
    for (const [n, lr, share] of [[1000, 1e-6, 1], [1037, 1e-2, 0.5], [33, 1, 1], [64, 1e-6, 0]] as const) {
      const [before, after] = beforeAfter(n, lr, share);
      if (n === 33) after[32] = -0;
      const d = weightDelta(before, after);
      const applied = before.slice();
      applyWeightDelta(applied, d, 'the trainer');
      assert.deepEqual(bits(applied), bits(after), `n ${n}, lr ${lr}`);
    }
  });

  it('after a step at lr 1e-6 it is under 0.7 of the arena (0.62 here: 2 bytes a weight, 6 more for the 6 % whose XOR carries into the high half), and nothing for weights that did not move', () => {
    const [before, after] = beforeAfter(1 << 16, 1e-6, 1);
    const whole = encodeWeights({ version: 1, layout: 'L', values: after }).length;
    const delta = encodeWeightDelta({ version: 1, base: 0, layout: 'L', delta: weightDelta(before, after) }).length;
    assert.ok(delta < 0.7 * whole, `${delta} bytes against ${whole}`);
    const still = encodeWeightDelta({ version: 1, base: 0, layout: 'L', delta: weightDelta(before, before) }).length;
    assert.ok(still < 0.05 * whole, `${still} bytes for an unchanged arena of ${whole}`);
  });

  it('travels as a message and back; a delta of another layout or size, or with sections of the wrong length, is refused by name', () => {
    const [before, after] = beforeAfter(100, 1e-3, 0.7);
    const payload = encodeWeightDelta({ version: 3, base: 2, layout: 'L', delta: weightDelta(before, after) });
    const u = decodeWeightDelta(payload, 'the trainer', 'L', 100);
    assert.deepEqual([u.version, u.base], [3, 2]);
    const applied = before.slice();
    applyWeightDelta(applied, u.delta, 'the trainer');
    assert.deepEqual(bits(applied), bits(after));
    assert.throws(() => decodeWeightDelta(payload, 'the trainer', 'M', 100), /weight delta from the trainer: another layout/);
    assert.throws(() => decodeWeightDelta(payload, 'the trainer', 'L', 101), /weight delta from the trainer: 100 values, this worker trains 101/);
    const cut = encodeWeightDelta({ version: 3, base: 2, layout: 'L', delta: { ...weightDelta(before, after), low: new Uint16Array(0) } });
    assert.throws(() => decodeWeightDelta(cut, 'the trainer', 'L', 100), /weight delta from the trainer: field "escapes"|expected int32 sections/);
  });

  it('refuses parts that disagree: more changed words than low halves, marks past the arena, an escape on an unchanged word or out of order', () => {
    const [before, after] = beforeAfter(40, 1, 1, 3);
    const d = weightDelta(before, after);
    assert.ok(d.escapeAt.length >= 2);
    const refuse = (bad: typeof d, why: RegExp): void => assert.throws(() => applyWeightDelta(before.slice(), bad, 'the trainer'), why);
    refuse({ ...d, low: d.low.subarray(1) }, /weight delta from the trainer: \d+ changed words but \d+ low halves/);
    refuse({ ...d, changed: Uint32Array.from([d.changed[0], d.changed[1] | (1 << 9)]) }, /marks words past the arena/);
    refuse({ ...d, escapeAt: Uint32Array.from([...d.escapeAt].reverse()) }, /out of order or past the arena/);
    const unchanged = weightDelta(before, before.map((v, i) => (i === 5 ? v + 1 : v)));
    refuse({ ...unchanged, escapeAt: Uint32Array.from([6]), escapeHigh: Uint16Array.from([1]) }, /escape 0 \(word 6\) is not a changed word/);
  });
});
