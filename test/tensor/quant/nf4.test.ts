/**
 * NF4 (src/tensor/quant/nf4.ts): the code book and the scale codes as defined, hand-built blocks
 * decoded to exact values, and the quantizer's choices (the smallest scale code covering the block's
 * absmax, the nearest level by the float32 midpoints, a tie to the lower level).
 *
 * Quantization error bound. With s = scale(c) ≥ absmax ≥ |x|, t = float32(x/s) is within 2^-24·|t|
 * of x/s and |t| ≤ 1; the level L chosen is nearest to t up to the float32 rounding of the midpoint
 * (≤ 2^-25), so |t − L| ≤ h + 2^-25 with h the largest half gap between adjacent levels,
 * (−0.6961928… − (−1))/2 = 0.1519036; w = float32(L·s) is within 2^-24·s of L·s. Together
 *   |x − w| ≤ s·(h + 2^-22),   and   s < 1.125·absmax
 * (c is the smallest code whose scale covers absmax; consecutive scales differ by at most 9/8), save
 * below the smallest scale (c = 1: then |x| ≤ absmax ≤ s = 1.125·2^-17 and the first bound holds).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bitsPerWeight, dequantizeRows, quantBytes, quantFormat, quantFormatOfGgml, quantizeRows,
} from '../../../src/tensor/quant/formats.js';
import { NF4_LEVELS, NF4_SCALES } from '../../../src/tensor/quant/nf4.js';
import { Rng } from '../../../src/util/rng.js';

const f = Math.fround;

/** bitsandbytes' get_4bit_type('nf4') (functional.py), as printed there. */
const BNB_NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** The scale of code c by the definition, computed here in float64 (exact: four significant bits). */
const scaleOf = (c: number): number => (c === 0 ? 0 : (1 + (c & 7) / 8) * 2 ** ((c >> 3) - 17));

/** The float32 midpoints between adjacent levels, computed here on their own. */
const MIDS = BNB_NF4.slice(1).map((v, i) => f((BNB_NF4[i] + v) / 2));

/** The largest half gap between adjacent levels (−1 and −0.696…). */
const HALF_GAP = Math.max(...MIDS.map((_, i) => (BNB_NF4[i + 1] - BNB_NF4[i]) / 2));

function decode(bytes: Uint8Array): Float32Array {
  const out = new Float32Array((bytes.length / 33) * 64);
  dequantizeRows('nf4', bytes, out.length, 0, 1, out);
  return out;
}

/** The next float32 above v (v ≠ 0). */
function nextUp(v: number): number {
  const a = Float32Array.of(v);
  const bits = new Uint32Array(a.buffer);
  bits[0] += v > 0 ? 1 : -1;
  return a[0];
}

/** Same value, −0 apart from +0. */
function assertSame(got: Float32Array, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: [${i}] is ${got[i]}, expected ${want[i]}`);
}

/** Blocks of 64 that reach every branch: gaussian, outliers, tiny (below the smallest scale), huge, negative, constant, ±1 edges. */
function testBlocks(): Float32Array {
  const rng = new Rng(17);
  const blocks: number[][] = [];
  for (let b = 0; b < 40; b++) blocks.push(Array.from({ length: 64 }, () => rng.normal() * 0.02));
  blocks.push(Array.from({ length: 64 }, (_, i) => (i % 13 === 0 ? 3 : rng.normal() * 0.01)));
  blocks.push(Array.from({ length: 64 }, () => rng.normal() * 1e-7));
  blocks.push(Array.from({ length: 64 }, () => rng.normal() * 3000));
  blocks.push(Array.from({ length: 64 }, () => -Math.abs(rng.normal())));
  blocks.push(new Array(64).fill(0.125));
  blocks.push(new Array(64).fill(-7));
  blocks.push(Array.from({ length: 64 }, (_, i) => (i === 5 ? -1 : i === 9 ? 1 : rng.normal() * 0.3)));
  return Float32Array.from(blocks.flat());
}

describe('nf4', () => {
  it('is a 64-weight, 33-byte block at 4.125 bits a weight, outside GGUF', () => {
    const q = quantFormat('nf4');
    assert.deepEqual([q.blockWeights, q.blockBytes, q.ggmlType, bitsPerWeight('nf4')], [64, 33, null, 4.125]);
    for (let id = 0; id < 64; id++) assert.notEqual(quantFormatOfGgml(id)?.type, 'nf4');
    assert.equal(quantBytes('nf4', 3, 128), 3 * 2 * 33);
    assert.throws(() => quantBytes('nf4', 1, 96, 'a row'), /a row of 96 values is not a whole number of nf4 blocks \(64 weights each\)/);
  });

  it('its levels are bitsandbytes\' NF4 code book, each a float32 value, increasing', () => {
    assert.deepEqual([...NF4_LEVELS], BNB_NF4);
    for (const v of BNB_NF4) assert.equal(f(v), v, `${v} is a float32 value`);
    for (let i = 1; i < 16; i++) assert.ok(NF4_LEVELS[i] > NF4_LEVELS[i - 1]);
    assert.equal(HALF_GAP, 0.15190359950065613);
  });

  it('scale code c is 0 for c = 0, else (1 + (c & 7)/8)·2^((c >> 3) − 17): exact, increasing, at most 9/8 apart', () => {
    assert.equal(NF4_SCALES.length, 256);
    for (let c = 0; c < 256; c++) assert.equal(NF4_SCALES[c], scaleOf(c), `code ${c}`);
    assert.deepEqual([NF4_SCALES[0], NF4_SCALES[1], NF4_SCALES[8], NF4_SCALES[136], NF4_SCALES[255]],
      [0, 1.125 * 2 ** -17, 2 ** -16, 1, 1.875 * 2 ** 14]);
    for (let c = 2; c < 256; c++) {
      assert.ok(NF4_SCALES[c] > NF4_SCALES[c - 1], `code ${c} increases`);
      assert.ok(NF4_SCALES[c] <= 1.125 * NF4_SCALES[c - 1], `code ${c} within 9/8 of the one below`);
    }
  });

  it('decodes hand-built blocks exactly: scale codes 0, 1, 136 (scale 1) and 255, weight j in byte 1 + j\'s low nibble, j + 32 in its high', () => {
    for (const c of [0, 1, 136, 255, 77]) {
      const block = new Uint8Array(33);
      block[0] = c;
      for (let j = 0; j < 32; j++) block[1 + j] = (j % 16) | ((15 - (j % 16)) << 4);
      const want = new Float32Array(64);
      for (let j = 0; j < 32; j++) {
        want[j] = f(BNB_NF4[j % 16] * scaleOf(c));
        want[j + 32] = f(BNB_NF4[15 - (j % 16)] * scaleOf(c));
      }
      assertSame(decode(block), want, `scale code ${c}`);
    }
    // At scale 1 the values are the levels; at the extremes, ±the scale.
    const block = new Uint8Array(33).fill(0x77);
    block[0] = 136;
    block[1] = 0xf0; // weight 0: level 0 (−1), weight 32: level 15 (+1)
    block[32] = 0x3c; // weight 31: level 12, weight 63: level 3
    const want = new Array(64).fill(0);
    [want[0], want[32], want[31], want[63]] = [-1, 1, BNB_NF4[12], BNB_NF4[3]];
    assertSame(decode(block), want, 'nibble order');
    block[0] = 255;
    const top = decode(block);
    assert.deepEqual([top[0], top[32], top[1]], [-30720, 30720, 0]);
    block[0] = 1;
    const bottom = decode(block);
    assert.deepEqual([bottom[0], bottom[32]], [-(2 ** -17) * 1.125, 2 ** -17 * 1.125]);
    // Scale code 0: every level times 0, the negative ones −0 (as the native product gives).
    block[0] = 0;
    block.fill(0x70, 1);
    const zero = decode(block);
    assert.ok(Object.is(zero[0], -0) && Object.is(zero[32], 0), `${zero[0]}, ${zero[32]}`);
  });

  it('a block of zeros is scale code 0 and the zero level, and decodes to zeros', () => {
    const bytes = quantizeRows('nf4', new Float32Array(128), 128);
    assert.deepEqual([...bytes], [0, ...new Array(32).fill(0x77), 0, ...new Array(32).fill(0x77)]);
    assertSame(decode(bytes), new Float32Array(128), 'zeros');
    // −0 is absmax 0 too.
    assert.equal(quantizeRows('nf4', new Float32Array(64).fill(-0), 64)[0], 0);
  });

  it('takes the smallest scale code covering the block\'s absmax and each weight\'s level by the float32 midpoints (nearest; a tie to the lower)', () => {
    const x = testBlocks();
    const bytes = quantizeRows('nf4', x, 64);
    for (let b = 0; b < x.length / 64; b++) {
      const block = x.subarray(64 * b, 64 * b + 64);
      const absmax = Math.max(...block.map(Math.abs));
      const c = bytes[33 * b];
      assert.ok(NF4_SCALES[c] >= absmax && (c === 1 || NF4_SCALES[c - 1] < absmax), `block ${b}: code ${c} for absmax ${absmax}`);
      for (let i = 0; i < 64; i++) {
        const q = i < 32 ? bytes[33 * b + 1 + i] & 15 : bytes[33 * b + 1 + i - 32] >> 4;
        const t = f(block[i] / NF4_SCALES[c]);
        const at = `block ${b} weight ${i}: t = ${t} → level ${q}`;
        assert.ok((q === 0 || t > MIDS[q - 1]) && (q === 15 || t <= MIDS[q]), at);
        for (let r = 0; r < 16; r++) assert.ok(Math.abs(t - BNB_NF4[q]) <= Math.abs(t - BNB_NF4[r]) + 2 ** -24, `${at}: level ${r} is nearer`);
      }
    }
    // On a midpoint exactly (scale 1: the block's absmax is 1), the lower level; just past it, the upper.
    for (let i = 0; i < 15; i++) {
      const block = new Float32Array(64);
      block[0] = 1;
      block[1] = MIDS[i];
      block[2] = nextUp(MIDS[i]);
      const q = quantizeRows('nf4', block, 64);
      assert.equal(q[0], 136);
      assert.deepEqual([q[2] & 15, q[3] & 15], [i, i + 1], `midpoint ${i} (${MIDS[i]})`);
    }
  });

  it(`each weight within scale·(h + 2^-22) of its value, h = ${HALF_GAP} (the header's bound), and scale < 1.125·absmax`, () => {
    const x = testBlocks();
    const bytes = quantizeRows('nf4', x, 64);
    const back = decode(bytes);
    let worst = 0;
    for (let b = 0; b < x.length / 64; b++) {
      const s = NF4_SCALES[bytes[33 * b]];
      let absmax = 0;
      for (let i = 0; i < 64; i++) absmax = Math.max(absmax, Math.abs(x[64 * b + i]));
      if (absmax >= 1.125 * 2 ** -17) assert.ok(s < 1.125 * absmax, `block ${b}: scale ${s}, absmax ${absmax}`);
      for (let i = 0; i < 64; i++) {
        const err = Math.abs(x[64 * b + i] - back[64 * b + i]);
        assert.ok(err <= s * (HALF_GAP + 2 ** -22), `block ${b} weight ${i}: ${x[64 * b + i]} → ${back[64 * b + i]} (scale ${s})`);
        worst = Math.max(worst, err / s);
      }
    }
    // The bound is the format's, not a loose one: some weight of these blocks comes near it.
    assert.ok(worst > 0.75 * HALF_GAP, `worst error ${worst} of a scale`);
  });

  it('clips past the largest scale (1.875·2^14) to ±that scale, scale code 255', () => {
    const block = new Float32Array(64).fill(100);
    block[3] = 1e5;
    block[4] = -4e4;
    block[5] = 30720;
    const bytes = quantizeRows('nf4', block, 64);
    assert.equal(bytes[0], 255);
    const back = decode(bytes);
    assert.deepEqual([back[3], back[4], back[5]], [30720, -30720, 30720]);
  });

  it('dequantizing and quantizing again gives the same bytes (the quantizer\'s blocks are its fixed points)', () => {
    // Past the smallest scale the block's largest weight takes level ±1 (|t| > 1/1.125 > the last
    // midpoint), so the decoded block's absmax is the scale itself. Below it (scale code 1) every
    // weight may take level 0 and the block decode to zeros, which is scale code 0: those are skipped.
    const bytes = quantizeRows('nf4', testBlocks(), 64);
    const again = quantizeRows('nf4', decode(bytes), 64);
    let compared = 0;
    for (let b = 0; b < bytes.length / 33; b++) {
      if (bytes[33 * b] === 1) continue;
      assert.deepEqual(again.subarray(33 * b, 33 * b + 33), bytes.subarray(33 * b, 33 * b + 33), `block ${b}`);
      compared++;
    }
    assert.equal(compared, bytes.length / 33 - 1);
  });

  it('refuses a NaN or an infinity by its position (nf4 has no code that would decode to NaN)', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = new Float32Array(128);
      x[70] = bad;
      assert.throws(() => quantizeRows('nf4', x, 128), new RegExp(`nf4: value 70 is ${String(bad)}, which nf4 cannot hold`));
    }
  });
});
