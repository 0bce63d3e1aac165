/**
 * bfloat16 and float16 to and from float32 (src/util/float_formats.ts): known bit
 * patterns, round to nearest even at ties, overflow, subnormals, signed zeros, NaN; widening exact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBf16Bits, fromBf16BitsArray, fromBf16BitsInto, fromF16Bits, toBf16Bits, toBf16BitsInto, toF16Bits } from '../../src/util/float_formats.js';
import { Rng } from '../../src/util/rng.js';

/** The float32 whose bits are `bits`. */
function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

describe('bfloat16', () => {
  it('known values: 1, -2, 0.1, pi, the largest finite, the smallest normal and subnormal', () => {
    const cases: [number, number][] = [
      [1, 0x3f80], [-2, 0xc000], [0.1, 0x3dcd], [Math.PI, 0x4049], [f32(0x7f7f0000), 0x7f7f], [2 ** -126, 0x0080], [2 ** -133, 0x0001],
      [0, 0x0000], [-0, 0x8000], [Infinity, 0x7f80], [-Infinity, 0xff80],
    ];
    for (const [x, bits] of cases) assert.equal(toBf16Bits(x), bits, `${x} → 0x${toBf16Bits(x).toString(16)}`);
  });

  it('rounds to nearest, ties to even; the largest float32 rounds up to infinity', () => {
    assert.equal(toBf16Bits(f32(0x3f808000)), 0x3f80); // tie, even below: down
    assert.equal(toBf16Bits(f32(0x3f818000)), 0x3f82); // tie, odd below: up
    assert.equal(toBf16Bits(f32(0x3f808001)), 0x3f81); // above the tie: up
    assert.equal(toBf16Bits(f32(0x3f807fff)), 0x3f80); // below the tie: down
    assert.equal(toBf16Bits(f32(0x7f7fffff)), 0x7f80);
    assert.equal(toBf16Bits(f32(0xff7fffff)), 0xff80);
  });

  it('NaN stays a quiet NaN with its sign', () => {
    assert.equal(toBf16Bits(NaN) & 0x7fc0, 0x7fc0);
    assert.equal(toBf16Bits(f32(0xff800001)), 0xffc0);
    assert.ok(Number.isNaN(fromBf16Bits(0x7fc1)));
  });

  it('widening is exact: every bf16 pattern round-trips through float32', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = fromBf16Bits(h);
      if (Number.isNaN(x)) continue;
      assert.equal(toBf16Bits(x), h, `0x${h.toString(16)}`);
    }
  });
});

describe('float16', () => {
  it('known values: 1, -2, 0.1, the largest finite (65504), the smallest normal and subnormal', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff], [2 ** -14, 0x0400], [2 ** -24, 0x0001], [3 * 2 ** -24, 0x0003],
      [0, 0x0000], [-0, 0x8000], [Infinity, 0x7c00], [-Infinity, 0xfc00],
    ];
    for (const [x, bits] of cases) assert.equal(toF16Bits(x), bits, `${x} → 0x${toF16Bits(x).toString(16)}`);
  });

  it('rounds to nearest even, through the subnormals and at the overflow edge', () => {
    assert.equal(toF16Bits(1 + 2 ** -11), 0x3c00); // tie, even below: down
    assert.equal(toF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie, odd below: up
    assert.equal(toF16Bits(65519), 0x7bff); // below the tie with 65536: the largest finite
    assert.equal(toF16Bits(65520), 0x7c00); // the tie rounds to even: infinity
    assert.equal(toF16Bits(2 ** -25), 0x0000); // half the smallest subnormal, tie to even: zero
    assert.equal(toF16Bits(-(2 ** -25) * 1.5), 0x8001);
    assert.equal(toF16Bits(3 * 2 ** -25), 0x0002); // 1.5 subnormal units: tie to even, up
    assert.equal(toF16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up out of the subnormals into the smallest normal
    assert.equal(toF16Bits(2 ** -30), 0x0000);
    assert.equal(toF16Bits(-(2 ** -30)), 0x8000);
  });

  it('NaN stays a quiet NaN with its sign (torch\'s pattern); every finite pattern round-trips exactly', () => {
    assert.equal(toF16Bits(NaN), 0x7e00);
    assert.equal(toF16Bits(f32(0xffc00000)), 0xfe00);
    assert.ok(Number.isNaN(fromF16Bits(0x7c01)));
    assert.equal(fromF16Bits(0x8000), -0);
    assert.ok(Object.is(fromF16Bits(0x8000), -0));
    assert.equal(fromF16Bits(0x0001), 2 ** -24);
    assert.equal(fromF16Bits(0x03ff), 1023 * 2 ** -24);
    for (let h = 0; h < 0x10000; h++) {
      const x = fromF16Bits(h);
      if (Number.isNaN(x)) continue;
      assert.equal(toF16Bits(x), h, `0x${h.toString(16)}`);
    }
  });
});

describe('toBf16BitsInto', () => {
  it('rounds a run into place as toBf16Bits rounds each value: ties, carries, infinities, NaNs, subnormals', () => {
    const special = [0, -0, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, f32(0xffc00001), 1e-40, -1e-45];
    const r = new Rng(7);
    const src = Float32Array.from([...special, ...Array.from({ length: 4096 }, () => f32(r.int(2 ** 32)))]);
    const dst = new Uint16Array(src.length + 3).fill(0xabcd);
    toBf16BitsInto(src.subarray(0), dst, 3);
    assert.deepEqual([...dst.subarray(0, 3)], [0xabcd, 0xabcd, 0xabcd], 'nothing before `at` is written');
    for (let i = 0; i < src.length; i++) assert.equal(dst[3 + i], toBf16Bits(src[i]), `value ${i}: ${src[i]}`);
  });
});

describe('fromBf16BitsInto', () => {
  it('widens every bit pattern as fromBf16Bits widens each, into a view at any offset', () => {
    const src = Uint16Array.from({ length: 1 << 16 }, (_, h) => h);
    const buffer = new Float32Array(src.length + 2).fill(7);
    const dst = buffer.subarray(1, 1 + src.length);
    fromBf16BitsInto(src, dst);
    assert.deepEqual([buffer[0], buffer[buffer.length - 1]], [7, 7], 'nothing outside dst is written');
    for (let h = 0; h < src.length; h++) assert.ok(Object.is(dst[h], fromBf16Bits(h)) || (Number.isNaN(dst[h]) && Number.isNaN(fromBf16Bits(h))), `bits ${h}`);
  });

  it('fromBf16BitsArray: the same widening into an array of its own', () => {
    const src = Uint16Array.from([0x3f80, 0xc000, 0x7f80, 0x0001]);
    assert.deepEqual([...fromBf16BitsArray(src)], [...src].map(fromBf16Bits));
  });
});
