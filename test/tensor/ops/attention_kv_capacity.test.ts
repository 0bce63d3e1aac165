/**
 * The attention kernel reading k and v in place from a KV cache's storage (AttentionGeometry's
 * kvCapacity: each k/v slice holds `capacity` positions of which the first tk are read) equals the
 * same kernel on packed k and v, on every backend: forward (out and probs) and backward (gk and gv
 * land in the strided layout, the padding untouched). The padding holds large values, so a kernel
 * that read past tk or at the packed offsets would fail.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import type { AttentionGeometry } from '../../../src/tensor/backend.js';
import { kernelsFor } from '../../../src/tensor/dispatch.js';
import type { Storage } from '../../../src/tensor/storage.js';
import { assertValues, storage, valuesOf } from '../../helpers/on_device.js';
import { Rng } from '../../helpers/tensors.js';

const PADDING = 1e3;

/** `slices` slices of `rows` × `width` values, each laid out in `capacity` rows (the rest PADDING). */
function strided(packed: number[], slices: number, rows: number, capacity: number, width: number): number[] {
  const out = new Array<number>(slices * capacity * width).fill(PADDING);
  for (let s = 0; s < slices; s++) {
    for (let i = 0; i < rows * width; i++) out[s * capacity * width + i] = packed[s * rows * width + i];
  }
  return out;
}

/** Reads slices laid out in `capacity` rows back as packed slices of `rows` rows. */
function packedFrom(values: number[], slices: number, rows: number, capacity: number, width: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < slices; s++) out.push(...values.slice(s * capacity * width, s * capacity * width + rows * width));
  return out;
}

const random = (n: number, rng: Rng): number[] => Array.from({ length: n }, () => rng.normal());

interface Case { name: string; bh: number; groups: number; tq: number; tk: number; cap: number; d: number; dv: number; causal: boolean }

const CASES: Case[] = [
  { name: 'a decode step: 6 query heads over 2 kv heads, 5 of 16 positions', bh: 6, groups: 3, tq: 1, tk: 5, cap: 16, d: 4, dv: 4, causal: false },
  { name: 'causal, 2 query rows, one k/v slice per query slice, dv != d', bh: 2, groups: 1, tq: 3, tk: 3, cap: 8, d: 3, dv: 2, causal: true },
];

describe('attention kernel, k/v read in place at kvCapacity', () => {
  for (const c of CASES) {
    it(`equals the packed kernel, forward and backward: ${c.name}`, async () => {
      const rng = new Rng(17);
      const kv = c.bh / c.groups;
      const [q, k, v, gy] = [c.bh * c.tq * c.d, kv * c.tk * c.d, kv * c.tk * c.dv, c.bh * c.tq * c.dv].map((n) => random(n, rng));
      const packed: AttentionGeometry = { bh: c.bh, groups: c.groups, tq: c.tq, tk: c.tk, d: c.d, dv: c.dv, scale: 0.7, causal: c.causal };
      const inPlace: AttentionGeometry = { ...packed, kvCapacity: c.cap };
      const run = async (g: AttentionGeometry, kValues: number[], vValues: number[]): Promise<number[][]> => {
        const [qs, ks, vs, gys] = [q, kValues, vValues, gy].map((x) => storage(x, 'float32'));
        const zeros = (n: number): Storage => storage(new Array<number>(n).fill(0), 'float32');
        const [out, probs, gq] = [c.bh * c.tq * c.dv, c.bh * c.tq * c.tk, c.bh * c.tq * c.d].map(zeros);
        const [gk, gv] = [ks.size, vs.size].map(zeros);
        const kern = kernelsFor(qs);
        kern.attention(g, qs.buffer, ks.buffer, vs.buffer, null, out.buffer, probs.buffer);
        kern.attentionBackward(g, qs.buffer, ks.buffer, vs.buffer, probs.buffer, null, gys.buffer, gq.buffer, gk.buffer, gv.buffer);
        return Promise.all([out, probs, gq, gk, gv].map((s) => valuesOf(s)));
      };
      const [out, probs, gq, gk, gv] = await run(packed, k, v);
      const [sOut, sProbs, sGq, sGk, sGv] = await run(inPlace, strided(k, kv, c.tk, c.cap, c.d), strided(v, kv, c.tk, c.cap, c.dv));
      assertValues(sOut, out, {}, 'float32');
      assertValues(sProbs, probs, {}, 'float32');
      assertValues(sGq, gq, {}, 'float32');
      assertValues(packedFrom(sGk, kv, c.tk, c.cap, c.d), gk, {}, 'float32');
      assertValues(packedFrom(sGv, kv, c.tk, c.cap, c.dv), gv, {}, 'float32');
      const untouched = (values: number[], width: number): boolean =>
        values.every((x, i) => i % (c.cap * width) < c.tk * width || x === 0);
      assert.ok(untouched(sGk, c.d) && untouched(sGv, c.dv), 'gk and gv past tk in each slice stay 0');
    });
  }

  it('refuses a kvCapacity below tk', () => {
    const s = storage(new Array<number>(64).fill(0), 'float32');
    const g: AttentionGeometry = { bh: 1, groups: 1, tq: 1, tk: 4, d: 2, dv: 2, scale: 1, causal: false, kvCapacity: 3 };
    assert.throws(() => kernelsFor(s).attention(g, s.buffer, s.buffer, s.buffer, null, s.buffer, s.buffer), /kvCapacity/);
  });
});
