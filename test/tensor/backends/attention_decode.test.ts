/**
 * The native bf16 decode attention (src/native/attention_decode.cc): one query position per head
 * read against a float32 KV cache's [Hkv, capacity, d] storage in place, with the bf16 attention
 * op's arithmetic. Checked against a float64 reference of that arithmetic (q, k, v rounded to bf16,
 * exact products, a softmax, the probabilities rounded to bf16), over grouped heads, a capacity
 * beyond the keys read, head sizes off the 32-lane vectors (the masked tails) and an empty cache;
 * and against the float32 attention, which it must not equal (the rounding happened).
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

/** The documented arithmetic in float64, head by head. */
function reference(g: AttentionGeometry, q: Float32Array, k: Float32Array, v: Float32Array): Float32Array {
  const [qb, kb, vb] = [q, k, v].map(bf16Values);
  const cap = g.kvCapacity ?? g.tk;
  const out = new Float32Array(g.bh * g.dv);
  for (let b = 0; b < g.bh; b++) {
    const s = Math.floor(b / g.groups);
    const scores = Array.from({ length: g.tk }, (_, j) => {
      let dot = 0;
      for (let c = 0; c < g.d; c++) dot += qb[b * g.d + c] * kb[(s * cap + j) * g.d + c];
      return g.scale * dot;
    });
    const top = Math.max(...scores);
    const e = scores.map((x) => Math.exp(x - top));
    const sum = e.reduce((a, x) => a + x, 0);
    const p = bf16Values(Float32Array.from(e, (x) => x / sum));
    for (let c = 0; c < g.dv; c++) {
      let acc = 0;
      for (let j = 0; j < g.tk; j++) acc += p[j] * vb[(s * cap + j) * g.dv + c];
      out[b * g.dv + c] = acc;
    }
  }
  return out;
}

interface Operands { q: Float32Array; k: Float32Array; v: Float32Array }

function operands(g: AttentionGeometry, seed: number): Operands {
  const rng = new Rng(seed);
  const cap = g.kvCapacity ?? g.tk;
  const kv = g.bh / g.groups;
  const fill = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
  return { q: fill(g.bh * g.d), k: fill(kv * cap * g.d), v: fill(kv * cap * g.dv) };
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
      const { q, k, v } = operands(g, g.bh * 100 + g.tk);
      const out = new Float32Array(g.bh * g.dv).fill(Number.NaN);
      native!.bfloat16!.attentionDecode!(g, q, k, v, out);
      const want = reference(g, q, k, v);
      assert.ok(maxDiff(out, want) <= 1e-5, `against the float64 reference: ${maxDiff(out, want)}`);
      if (g.tk > 1) {
        const f32 = new Float32Array(g.bh * g.dv);
        native!.attention(g, q, k, v, null, f32, new Float32Array(g.bh * g.tk));
        assert.ok(maxDiff(out, f32) > 1e-4, 'the operands were rounded to bf16 (the float32 attention differs)');
      }
    });
  }

  test('an empty cache gives zeros; several query positions, a causal mask or a short cache buffer are refused by name', () => {
    const g = geometry(3, 3, 0, 16, 4);
    const { q, k, v } = operands(g, 1);
    const out = new Float32Array(3 * 16).fill(7);
    native!.bfloat16!.attentionDecode!(g, q, k, v, out);
    assert.deepEqual([...out], new Array(48).fill(0));
    assert.throws(() => native!.bfloat16!.attentionDecode!({ ...g, tq: 2, tk: 2 }, q, k, v, out), /attentionDecodeBf16: one query position/);
    assert.throws(() => native!.bfloat16!.attentionDecode!({ ...g, tk: 2, causal: true }, q, k, v, out), /attentionDecodeBf16: one query position/);
    assert.throws(() => native!.bfloat16!.attentionDecode!({ ...g, tk: 2, kvCapacity: 8 }, q, k, v, out), /attentionDecodeBf16: buffer 'k' has 64 elements, needs 128/);
  });
});
