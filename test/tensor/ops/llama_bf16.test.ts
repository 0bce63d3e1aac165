/**
 * rmsNorm, rotary and siluMul under a bf16 step (docs/PRECISION.md): float32 ops like layerNorm and
 * the elementwise ops, so a bf16 step computes them exactly as an fp32 one; none reads its own
 * output in its backward, so a bf16 linear after rmsNorm or siluMul may take the float32 values
 * over (`lastUse`, handover.ts) and keep only a bf16 copy; bfloat16 tensors are refused by the
 * kernel registry, naming the op, as the elementwise ops refuse them.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import {
  Tensor, backward, lastUse, linear, mul, rmsNorm, rotary, siluMul, toBf16, withComputePrecision, type Precision,
} from '../../../src/tensor/index.js';
import { BufferRecycler } from '../../../src/tensor/recycler.js';
import { Rng, randn, uniform } from '../../helpers/tensors.js';

const [M, C, F, K] = [32, 48, 64, 2];

function leaf(t: Tensor): Tensor {
  t.requiresGrad = true;
  return t;
}

/**
 * K blocks r = rotary(h), h ← down(lastUse(siluMul(gate(lastUse(rmsNorm(r))), up(r)))) over
 * h [M/8, 8, C] (each handed-over tensor has one reader, as lastUse promises): the bytes the step
 * holds after the forward, the output and every gradient.
 */
function blocks(precision: Precision, handOver: boolean): { heldBytes: number; out: number[]; grads: number[][] } {
  const rng = new Rng(5);
  const x = leaf(randn([M / 8, 8, C], rng, 'float32'));
  const angles = Array.from({ length: 8 * (C / 2) }, (_, k) => Math.floor(k / (C / 2)) * 0.3 * (1 + (k % (C / 2))));
  const cos = Tensor.from(angles.map(Math.cos), [8, C / 2], 'float32'), sin = Tensor.from(angles.map(Math.sin), [8, C / 2], 'float32');
  const params = Array.from({ length: K }, () => [
    leaf(uniform([C], rng, 0.5, 1.5, 'float32')), leaf(randn([F, C], rng, 'float32', 0.2)),
    leaf(randn([F, C], rng, 'float32', 0.2)), leaf(randn([C, F], rng, 'float32', 0.2)),
  ] as const);
  const mark = (t: Tensor): Tensor => (handOver ? lastUse(t) : t);
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  let out: number[] = [];
  withComputePrecision(precision, () => recycler.run(() => {
    let h = x;
    for (const [w, gate, up, down] of params) {
      const r = rotary(h, cos, sin);
      h = linear(mark(siluMul(linear(mark(rmsNorm(r, w, 1e-6)), gate, null), linear(r, up, null))), down, null);
    }
    heldBytes = recycler.bytesLent;
    out = [...h.values()];
    backward(h, new Float32Array(h.size).fill(1));
  }));
  return { heldBytes, out, grads: [x, ...params.flat()].map((t) => [...t.gradValues()!]) };
}

describe('rmsNorm, rotary and siluMul under bf16', () => {
  it('run in float32 under a bf16 step: the same values and gradients as fp32, bit for bit', () => {
    const run = (precision: Precision): number[][] => withComputePrecision(precision, () => {
      const rng = new Rng(2);
      const x = leaf(randn([2, 3, 4, 8], rng, 'float32')), w = leaf(uniform([8], rng, 0.5, 1.5, 'float32'));
      const g = leaf(randn([2, 3, 4, 8], rng, 'float32', 3));
      const cos = uniform([4, 4], rng, -1, 1, 'float32'), sin = uniform([4, 4], rng, -1, 1, 'float32');
      const y = siluMul(g, rotary(rmsNorm(x, w, 1e-6), cos, sin));
      assert.equal(y.dtype, 'float32');
      backward(y, new Float32Array(y.size).fill(1));
      return [[...y.values()], [...x.gradValues()!], [...w.gradValues()!], [...g.gradValues()!]];
    });
    assert.deepEqual(run('bf16'), run('fp32'));
  });

  it('a bf16 linear takes their outputs over (lastUse): 2 bytes an element less for each, the same gradients', () => {
    const fp32 = blocks('fp32', true);
    const bf16 = blocks('bf16', false);
    const handed = blocks('bf16', true);
    assert.equal(bf16.heldBytes, fp32.heldBytes);
    // Each block hands over its rmsNorm output (to gate) and its siluMul output (to down).
    assert.equal(fp32.heldBytes - handed.heldBytes, K * (M * C + M * F) * (4 - 2));
    assert.deepEqual(handed.out, bf16.out);
    assert.deepEqual(handed.grads, bf16.grads);
  });

  it('refuse bfloat16 tensors as the elementwise ops do: no kernel registered for bfloat16, naming the op', () => {
    const b = toBf16(randn([2, 4], new Rng(1), 'float32'));
    assert.throws(() => mul(b, b), /no kernel "binary" is registered for bfloat16/);
    assert.throws(() => rmsNorm(b, toBf16(Tensor.full([4], 1, 'float32')), 1e-6), /no kernel "rmsNorm" is registered for bfloat16/);
    assert.throws(() => siluMul(b, b), /no kernel "siluMul" is registered for bfloat16/);
    const table = toBf16(Tensor.full([2, 2], 1, 'float32'));
    assert.throws(() => rotary(b, table, table), /no kernel "rotary" is registered for bfloat16/);
  });
});
