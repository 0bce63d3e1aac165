/**
 * The native bf16 decode attention (src/native/attention_decode.cc): one query position per head,
 * the new position's k and v stored (rounded to bf16) into a bf16 KV cache's [Hkv, capacity, d]
 * storage, which is then read in place, with the bf16 attention op's arithmetic. Checked against a
 * float64 reference of that arithmetic (q rounded to bf16, exact products, a softmax, the
 * probabilities rounded to bf16) over grouped heads, a capacity beyond the keys read (never read:
 * NaN there), head sizes off the 32-lane vectors (the masked tails) and a single key; and against
 * the float32 attention on the same cache, which it must not equal (q and p were rounded). The
 * float32 decode attention over a float32 cache against the fused float32 kernel.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttentionGeometry } from '../../../src/tensor/backend.js';
import { jsHostBackend as js } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend } from '../../../src/tensor/backends/native.js';
import { Rng } from '../../../src/util/rng.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;
const skip = native ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

/** x rounded to bf16 and widened back (js's rounding: nearest even). */
function bf16Values(x: Float32Array): Float32Array {
  const h = new Uint16Array(x.length);
  js.toBf16(x, h);
  return new Float32Array(Uint32Array.from(h, (b) => b << 16).buffer);
}

/** bf16 bits widened to float32. */
function widened(h: Uint16Array): Float32Array {
  return new Float32Array(Uint32Array.from(h, (b) => b << 16).buffer);
}

/** The documented arithmetic in float64, head by head, over the cache's first tk positions (k, v: widened bf16). */
function reference(g: AttentionGeometry, q: Float32Array, k: Float32Array, v: Float32Array): Float32Array {
  const qb = bf16Values(q);
  const cap = g.kvCapacity ?? g.tk;
  const out = new Float32Array(g.bh * g.dv);
  for (let b = 0; b < g.bh; b++) {
    const s = Math.floor(b / g.groups);
    const scores = Array.from({ length: g.tk }, (_, j) => {
      let dot = 0;
      for (let c = 0; c < g.d; c++) dot += qb[b * g.d + c] * k[(s * cap + j) * g.d + c];
      return g.scale * dot;
    });
    const top = Math.max(...scores);
    const e = scores.map((x) => Math.exp(x - top));
    const sum = e.reduce((a, x) => a + x, 0);
    const p = bf16Values(Float32Array.from(e, (x) => x / sum));
    for (let c = 0; c < g.dv; c++) {
      let acc = 0;
      for (let j = 0; j < g.tk; j++) acc += p[j] * v[(s * cap + j) * g.dv + c];
      out[b * g.dv + c] = acc;
    }
  }
  return out;
}

/** q, the new position's k and v, and a bf16 cache: positions below tk − 1 random, the rest NaN (never to be read). */
interface Operands { q: Float32Array; kNew: Float32Array; vNew: Float32Array; k: Uint16Array; v: Uint16Array }

const NAN_BF16 = 0x7fc0;

function operands(g: AttentionGeometry, seed: number): Operands {
  const rng = new Rng(seed);
  const cap = g.kvCapacity ?? g.tk;
  const kv = g.bh / g.groups;
  const fill = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
  const cache = (d: number): Uint16Array => {
    const h = new Uint16Array(kv * cap * d).fill(NAN_BF16);
    for (let s = 0; s < kv; s++) {
      const earlier = new Uint16Array((g.tk - 1) * d);
      js.toBf16(fill((g.tk - 1) * d), earlier);
      h.set(earlier, s * cap * d);
    }
    return h;
  };
  return { q: fill(g.bh * g.d), kNew: fill(kv * g.d), vNew: fill(kv * g.dv), k: cache(g.d), v: cache(g.dv) };
}

function geometry(bh: number, groups: number, tk: number, d: number, kvCapacity: number): AttentionGeometry {
  return { bh, groups, tq: 1, tk, d, dv: d, scale: 1 / Math.sqrt(d), causal: false, kvCapacity };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

describe('native bf16 decode attention over a float32 KV cache', { skip }, () => {
  const cases: Array<[string, AttentionGeometry]> = [
    ['9 heads over 3 kv heads (SmolLM2), d 64, capacity 128 holding 37 keys', geometry(9, 3, 37, 64, 128)],
    ['12 heads, no grouping (GPT-2), d 64, 1 key', geometry(12, 1, 1, 64, 16)],
    ['7 query heads per kv head (Qwen2.5), d 64', geometry(14, 7, 20, 64, 32)],
    ['d 20 (a masked tail of both products), 6 keys', geometry(4, 2, 6, 20, 8)],
    ['d 80 (one full 32-lane block and a tail; 80 columns of v: a partial pass), 9 keys', geometry(2, 1, 9, 80, 9)],
  ];
  for (const [name, g] of cases) {
    test(name, () => {
      const o = operands(g, g.bh * 100 + g.tk);
      const out = new Float32Array(g.bh * g.dv).fill(Number.NaN);
      native!.bfloat16!.attentionDecode!(g, o.q, o.kNew, o.vNew, o.k, o.v, out);
      const cap = g.kvCapacity!;
      for (let s = 0; s < g.bh / g.groups; s++) {
        const at = (s * cap + g.tk - 1) * g.d;
        assert.deepEqual([...widened(o.k.subarray(at, at + g.d))], [...bf16Values(o.kNew.subarray(s * g.d, (s + 1) * g.d))], `k of slice ${s} stored at ${g.tk - 1}`);
        assert.deepEqual([...widened(o.v.subarray(at, at + g.d))], [...bf16Values(o.vNew.subarray(s * g.d, (s + 1) * g.d))], `v of slice ${s} stored at ${g.tk - 1}`);
      }
      const [k, v] = [widened(o.k), widened(o.v)];
      const want = reference(g, o.q, k, v);
      assert.ok(maxDiff(out, want) <= 1e-5, `against the float64 reference: ${maxDiff(out, want)}`);
      if (g.tk > 1) {
        const f32 = new Float32Array(g.bh * g.dv);
        native!.attention(g, o.q, k, v, null, f32, new Float32Array(g.bh * g.tk));
        assert.ok(maxDiff(out, f32) > 1e-4, 'q and the probabilities were rounded to bf16 (the float32 attention differs)');
      }
    });
  }

  test('several query positions, a causal mask, an empty cache or a short cache buffer are refused by name', () => {
    const g = geometry(3, 3, 2, 16, 4);
    const o = operands(g, 1);
    const out = new Float32Array(3 * 16);
    const call = (h: AttentionGeometry, k = o.k): void => native!.bfloat16!.attentionDecode!(h, o.q, o.kNew, o.vNew, k, o.v, out);
    assert.throws(() => call({ ...g, tq: 2 }), /attentionDecodeBf16: one query position/);
    assert.throws(() => call({ ...g, causal: true }), /attentionDecodeBf16: one query position/);
    assert.throws(() => call({ ...g, tk: 0 }), /attentionDecodeBf16: tk counts the new position/);
    assert.throws(() => call(g, o.k.subarray(0, 63)), /attentionDecodeBf16: buffer 'k' has 63 elements, needs 64/);
  });
});

describe('native float32 decode attention over a float32 KV cache', { skip }, () => {
  const cases: Array<[string, AttentionGeometry]> = [
    ['9 heads over 3 kv heads (SmolLM2), d 64, capacity 128 holding 37 keys', geometry(9, 3, 37, 64, 128)],
    ['12 heads, no grouping (GPT-2), d 64, 1 key', geometry(12, 1, 1, 64, 16)],
    ['d 20 (a masked tail), 6 keys', geometry(4, 2, 6, 20, 8)],
    ['d 80, 9 keys (a partial pass of the weighted sum)', geometry(2, 1, 9, 80, 9)],
  ];
  for (const [name, g] of cases) {
    test(`${name}: the new position stored exactly, out within 1e-5 of the fused float32 kernel`, () => {
      const rng = new Rng(g.bh * 10 + g.tk);
      const cap = g.kvCapacity!;
      const kv = g.bh / g.groups;
      const fill = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
      const cache = (): Float32Array => {
        const c = new Float32Array(kv * cap * g.d).fill(Number.NaN);
        for (let s = 0; s < kv; s++) c.set(fill((g.tk - 1) * g.d), s * cap * g.d);
        return c;
      };
      const [q, kNew, vNew, k, v] = [fill(g.bh * g.d), fill(kv * g.d), fill(kv * g.d), cache(), cache()];
      const out = new Float32Array(g.bh * g.dv).fill(Number.NaN);
      native!.attentionDecode!(g, q, kNew, vNew, k, v, out);
      for (let s = 0; s < kv; s++) {
        const at = (s * cap + g.tk - 1) * g.d;
        assert.deepEqual([...k.subarray(at, at + g.d)], [...kNew.subarray(s * g.d, (s + 1) * g.d)]);
        assert.deepEqual([...v.subarray(at, at + g.d)], [...vNew.subarray(s * g.d, (s + 1) * g.d)]);
      }
      const fused = new Float32Array(g.bh * g.dv);
      native!.attention(g, q, k, v, null, fused, new Float32Array(g.bh * g.tk));
      assert.ok(maxDiff(out, fused) <= 1e-5, `against the fused kernel: ${maxDiff(out, fused)}`);
    });
  }

  test('refuses several query positions and a short cache by name', () => {
    const g = geometry(2, 1, 2, 16, 4);
    const buf = (n: number): Float32Array => new Float32Array(n);
    assert.throws(() => native!.attentionDecode!({ ...g, tq: 2 }, buf(32), buf(32), buf(32), buf(128), buf(128), buf(32)), /attentionDecodeF32: one query position/);
    assert.throws(() => native!.attentionDecode!(g, buf(32), buf(32), buf(32), buf(127), buf(128), buf(32)), /attentionDecodeF32: buffer 'k' has 127 elements, needs 128/);
  });
});
