import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CODEC_NAMES, codecByName } from '../../../src/comm/codecs/codec.js';
import { INT8_BLOCK } from '../../../src/comm/codecs/int8.js';
import { toHalf } from '../../../src/comm/codecs/fp16.js';

function roundTrip(name: (typeof CODEC_NAMES)[number], values: ArrayLike<number>): Float32Array {
  const c = codecByName(name);
  const src = Float32Array.from(values);
  const bytes = new Uint8Array(c.encodedBytes(src.length));
  c.encode(src, bytes);
  const out = new Float32Array(src.length);
  c.decode(bytes, out);
  return out;
}

const bitsOf = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0];
/** Values across many magnitudes, both signs. */
const spread = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 9) - 4));

describe('codecs', () => {
  it('fp16: exact where representable, nearest-even at ties, relative error within 2^-11 in range', () => {
    assert.equal(toHalf(bitsOf(1)), 0x3c00);
    assert.equal(toHalf(bitsOf(65504)), 0x7bff);
    assert.equal(toHalf(bitsOf(65520)), 0x7c00, 'rounds up to infinity');
    assert.equal(toHalf(bitsOf(2 ** -24)), 0x0001, 'smallest subnormal');
    assert.equal(toHalf(bitsOf(1 + 2 ** -11)), 0x3c00, 'tie to even (down)');
    assert.equal(toHalf(bitsOf(1 + 3 * 2 ** -11)), 0x3c02, 'tie to even (up)');
    assert.equal(toHalf(bitsOf(-2)), 0xc000);
    const out = roundTrip('fp16', spread);
    for (let i = 0; i < spread.length; i++) {
      const x = spread[i];
      if (Math.abs(x) >= 2 ** -14) assert.ok(Math.abs(out[i] - x) <= 2 ** -11 * Math.abs(x), `${x} → ${out[i]}`);
      else assert.ok(Math.abs(out[i] - x) <= 2 ** -25, `${x} → ${out[i]} (subnormal)`);
    }
    assert.ok(Number.isNaN(roundTrip('fp16', [NaN])[0]));
    assert.deepEqual([...roundTrip('fp16', [Infinity, -Infinity, 1e6])], [Infinity, -Infinity, Infinity]);
  });

  it('bf16: the high half of float32, nearest-even, relative error within 2^-8; NaN stays NaN', () => {
    const out = roundTrip('bf16', spread);
    for (let i = 0; i < spread.length; i++) assert.ok(Math.abs(out[i] - spread[i]) <= 2 ** -8 * Math.abs(spread[i]), `${spread[i]} → ${out[i]}`);
    const tie = new Float32Array(new Uint32Array([0x3f808000, 0x3f818000]).buffer);
    assert.deepEqual([...roundTrip('bf16', tie)].map(bitsOf), [0x3f800000, 0x3f820000]);
    assert.ok(Number.isNaN(roundTrip('bf16', [NaN])[0]));
  });

  it('int8: one scale per block of 256, error within half a step, a NaN poisons only its block', () => {
    const c = codecByName('int8');
    assert.equal(c.encodedBytes(1000), 4 * 4 + 1000);
    const out = roundTrip('int8', spread);
    for (let b = 0; b * INT8_BLOCK < spread.length; b++) {
      const block = spread.subarray(b * INT8_BLOCK, (b + 1) * INT8_BLOCK);
      const step = Math.max(...block.map(Math.abs)) / 127;
      block.forEach((x, k) => assert.ok(Math.abs(out[b * INT8_BLOCK + k] - x) <= step / 2 + 1e-12 * step, `${x} → ${out[b * INT8_BLOCK + k]}`));
    }
    assert.deepEqual([...roundTrip('int8', [0, 0, 0])], [0, 0, 0]);
    const poisoned = new Float32Array(600).fill(1);
    poisoned[300] = NaN;
    const back = roundTrip('int8', poisoned);
    assert.ok(back.subarray(256, 512).every(Number.isNaN));
    assert.ok(back.subarray(0, 256).every((x) => x === 1) && back.subarray(512).every((x) => x === 1));
  });
});
