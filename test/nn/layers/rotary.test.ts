/**
 * The rotary embedding's numbers against transformers' formulas, written out here in float64:
 * `ROPE_INIT_FUNCTIONS["default"]` (inv_freq = 1 / θ^(2i/D)) and `_compute_llama3_parameters`
 * (Llama 3's wavelength bands), the cos/sin tables of positions × frequencies, and the rotation
 * itself as rotate_half applies it (q·cos + rotate_half(q)·sin).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RotaryEmbedding, inverseFrequencies, llama3Frequencies, rotaryTables } from '../../../src/nn/layers/rotary.js';
import { BufferRecycler } from '../../../src/tensor/recycler.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { assertClose } from '../../helpers/tensors.js';

/** transformers' default rope: 1 / base ** (arange(0, dim, 2) / dim). */
function hfDefault(dim: number, base: number): number[] {
  return Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
}

/** transformers' _compute_llama3_parameters, line by line. */
function hfLlama3(invFreq: number[], factor: number, lowFreqFactor: number, highFreqFactor: number, oldContextLen: number): number[] {
  const lowFreqWavelen = oldContextLen / lowFreqFactor;
  const highFreqWavelen = oldContextLen / highFreqFactor;
  return invFreq.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const invFreqLlama = wavelen > lowFreqWavelen ? f / factor : f;
    const smoothFactor = (oldContextLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    const smoothed = ((1 - smoothFactor) * invFreqLlama) / factor + smoothFactor * invFreqLlama;
    const isMediumFreq = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    return isMediumFreq ? smoothed : invFreqLlama;
  });
}

const LLAMA_32 = { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 };

describe('rotary frequencies (nn/layers/rotary.ts)', () => {
  for (const [dim, theta] of [[16, 1e4], [64, 1e5], [64, 5e5], [128, 1e6]] as const) {
    it(`head_dim ${dim}, θ ${theta}: 1 / θ^(2i/D) as transformers' default rope`, () => {
      assertClose(inverseFrequencies(dim, theta), hfDefault(dim, theta), { rtol: 1e-6 });
    });
  }

  it('Llama-3.2-1B scaling (factor 32, low 1, high 4, original 8192): transformers\' three wavelength bands', () => {
    const want = hfLlama3(hfDefault(64, 5e5), 32, 1, 4, 8192);
    const got = inverseFrequencies(64, 5e5, LLAMA_32);
    assertClose(got, want, { rtol: 1e-6 });
    // Each band is exercised: kept (short wavelengths), divided by 32 (long) and blended between.
    const base = hfDefault(64, 5e5);
    const wavelen = base.map((f) => (2 * Math.PI) / f);
    assert.ok(wavelen.some((w) => w < 8192 / 4) && wavelen.some((w) => w > 8192) && wavelen.some((w) => w >= 2048 && w <= 8192));
    const unscaled = inverseFrequencies(64, 5e5);
    base.forEach((f, i) => {
      if (wavelen[i] < 2048) assert.equal(got[i], unscaled[i]);
      if (wavelen[i] > 8192) assertClose([got[i]], [f / 32], { rtol: 1e-6 });
    });
  });

  it('llama3Frequencies refuses high_freq_factor <= low_freq_factor, and odd head sizes are refused by name', () => {
    assert.throws(() => llama3Frequencies(new Float32Array([1]), { ...LLAMA_32, highFreqFactor: 1 }), /high_freq_factor > low_freq_factor/);
    assert.throws(() => inverseFrequencies(15, 1e4), /head_dim must be a positive even integer, got 15/);
    assert.throws(() => inverseFrequencies(16, 0), /rope_theta must be positive/);
  });

  it('tables: cos and sin of position × frequency, [T, D/2]', () => {
    const inv = inverseFrequencies(8, 1e4);
    const { cos, sin } = rotaryTables(inv, 5);
    assert.equal(cos.length, 5 * 4);
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 4; i++) {
        assertClose([cos[t * 4 + i], sin[t * 4 + i]], [Math.cos(t * inv[i]), Math.sin(t * inv[i])], { rtol: 1e-6, atol: 1e-7 });
      }
    }
  });
});

describe('RotaryEmbedding', () => {
  it('rotates q [N, H, T, D] as rotate_half: x·cos + [−x₂, x₁]·sin, position by position', () => {
    const [N, H, T, D] = [1, 2, 3, 4];
    const rope = new RotaryEmbedding(D, 100);
    const x = Tensor.from(Array.from({ length: N * H * T * D }, (_, i) => Math.sin(i + 1)), [N, H, T, D]);
    const got = rope.apply(x).values();
    const inv = hfDefault(D, 100);
    const xs = x.values();
    const want: number[] = [];
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const v = Array.from(xs.subarray((h * T + t) * D, (h * T + t + 1) * D));
        const half = D / 2;
        for (let i = 0; i < D; i++) {
          const f = inv[i % half] * t;
          const rotated = i < half ? -v[i + half] : v[i - half];
          want.push(v[i] * Math.cos(f) + rotated * Math.sin(f));
        }
      }
    }
    assertClose(got, want, { rtol: 1e-5, atol: 1e-6 });
  });

  it('builds the tables once per device, again at twice the length only when a longer one is asked; a row is the same whatever the length', () => {
    const rope = new RotaryEmbedding(8, 1e4);
    const a = rope.tablesFor(6, 'cpu');
    assert.deepEqual(a.cos.shape, [6, 4]);
    assert.equal(rope.tablesFor(6, 'cpu'), a);
    assert.equal(rope.tablesFor(3, 'cpu'), a, 'a shorter length reads the same tables');
    const b = rope.tablesFor(7, 'cpu');
    assert.deepEqual(b.cos.shape, [12, 4]);
    for (let n = 8; n <= 12; n++) assert.equal(rope.tablesFor(n, 'cpu'), b, `length ${n}: no new tables (decode grows one position a step)`);
    assert.deepEqual(b.cos.values().subarray(0, 24), a.cos.values());
    assert.deepEqual(b.sin.values().subarray(0, 24), a.sin.values());
    // A decode step past a cached prefix rotates as the same positions of a whole sequence do.
    const x = Tensor.from(Array.from({ length: 2 * 9 * 8 }, (_, i) => Math.sin(i)), [1, 2, 9, 8], 'float32');
    const whole = new RotaryEmbedding(8, 1e4).apply(x).values();
    const last = rope.apply(Tensor.from(Array.from({ length: 2 * 8 }, (_, i) => Math.sin(i < 8 ? 64 + i : 72 + 64 + i - 8)), [1, 2, 1, 8], 'float32'), 8).values();
    assert.deepEqual(last, Float32Array.from([...whole.subarray(64, 72), ...whole.subarray(136, 144)]));
  });

  it('tables made inside a training step outlive it (the step\'s recycled buffers are not theirs)', () => {
    const rope = new RotaryEmbedding(8, 1e4);
    const recycler = new BufferRecycler();
    const { cos, sin } = recycler.run(() => rope.tablesFor(6, 'cpu'));
    const before = [Float32Array.from(cos.values()), Float32Array.from(sin.values())];
    // The next step takes the last step's buffers of this size and writes its own values into them.
    recycler.run(() => [Tensor.full([6, 4], 7), Tensor.full([6, 4], 7)]);
    const after = rope.tablesFor(6, 'cpu');
    assert.deepEqual([after.cos.values(), after.sin.values()], before);
  });

  it('a decode step\'s rows at different positions, rotated in one call, equal each row rotated alone', () => {
    const [N, H, D] = [3, 2, 8];
    const rope = new RotaryEmbedding(D, 1e4, { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 });
    const x = Tensor.from(Array.from({ length: N * H * D }, (_, i) => Math.cos(i + 0.5)), [N, H, 1, D], 'float32');
    const offsets = [5, 0, 37];
    const got = rope.applyRows(x, offsets);
    assert.deepEqual(got.shape, [N, H, 1, D]);
    const alone = offsets.map((o, n) => rope.apply(Tensor.from(x.values().subarray(n * H * D, (n + 1) * H * D), [1, H, 1, D], 'float32'), o).values());
    assert.deepEqual(got.values(), Float32Array.from(alone.flatMap((v) => Array.from(v))), 'the same float32 values, bit for bit');
    const again = rope.applyRows(x, offsets);
    assert.deepEqual(again.values(), got.values(), 'the next layer of the step reuses the step\'s tables');
  });
});
