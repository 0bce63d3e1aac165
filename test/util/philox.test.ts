/**
 * Philox-4x32-10 (util/philox.ts), the counter-based generator of dropout masks: Random123's known
 * answers, the exact high word of a 32×32 product, and the integer threshold that decides as u < p.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dropThreshold, dropoutWord, mulHi32, philox4x32 } from '../../src/util/philox.js';
import { Rng } from '../../src/util/rng.js';

const hex = (w: Uint32Array): string => Array.from(w, (x) => x.toString(16).padStart(8, '0')).join(' ');

describe('philox4x32', () => {
  it('gives Random123\'s known answers (kat_vectors: philox4x32, 10 rounds)', () => {
    const out = new Uint32Array(4);
    assert.equal(hex(philox4x32(0, 0, 0, 0, 0, 0, out)), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    const ones = 0xffffffff;
    assert.equal(hex(philox4x32(ones, ones, ones, ones, ones, ones, out)), '408f276d 41c83b0e a20bc7c6 6d5451fd');
    assert.equal(hex(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out)), 'd16cfe09 94fdcceb 5001e420 24126ea1');
  });

  it('mulHi32 is the high word of the exact 64-bit product', () => {
    const r = new Rng(11);
    const cases = [[0, 0], [0xffffffff, 0xffffffff], [0xd2511f53, 0xffffffff], [1, 0xffffffff], [0x10000, 0x10000]];
    for (let i = 0; i < 2000; i++) cases.push([r.nextUint32(), r.nextUint32()]);
    for (const [a, b] of cases) assert.equal(mulHi32(a, b), Number((BigInt(a) * BigInt(b)) >> 32n), `${a} × ${b}`);
  });

  it('dropoutWord(i) is word i % 4 of the block at counter i / 4', () => {
    const block = philox4x32(5, 0, 0, 0, 17, 23, new Uint32Array(4));
    assert.deepEqual([20, 21, 22, 23].map((i) => dropoutWord(17, 23, i)), Array.from(block));
  });

  it('dropThreshold(p): word < threshold exactly when word / 2^32 < p', () => {
    for (const p of [0, 0.1, 0.25, 0.5, 1 / 3, 0.9, 1 - 2 ** -30]) {
      const t = dropThreshold(p);
      for (const w of [t - 1, t, t + 1].filter((x) => x >= 0 && x < 2 ** 32)) assert.equal(w < t, w / 2 ** 32 < p, `p ${p}, word ${w}`);
    }
    assert.equal(dropThreshold(0), 0);
    assert.equal(dropThreshold(0.5), 2 ** 31);
    assert.equal(dropThreshold(1 - 2 ** -40), 0xffffffff, 'clamped below 2^32');
    assert.throws(() => dropThreshold(1), /dropout: p must be in \[0, 1\), got 1/);
  });
});
