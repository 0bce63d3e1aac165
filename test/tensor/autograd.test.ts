import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Tensor, add, affine, backward, exp, isGradEnabled, matmul, mul, noGrad, relu, reshape, sum, tanh,
} from '../../src/tensor/index.js';
import { record } from '../../src/tensor/autograd.js';
import { Rng, assertClose, leaf, randn } from '../helpers/tensors.js';

const vec = (v: number[]): Tensor => leaf(Tensor.from(v, [v.length], 'float64'));

describe('autograd', () => {
  it('a tensor used twice accumulates both contributions', () => {
    const x = vec([1, 2, 3]);
    backward(sum(mul(x, x)));
    assert.deepEqual(Array.from(x.gradValues()!), [2, 4, 6]);
    const y = vec([1, 2]);
    // y feeds two branches: d/dy sum(3y + exp(y)) = 3 + exp(y)
    backward(sum(add(affine(y, 3), exp(y))));
    assertClose(Array.from(y.gradValues()!), [3 + Math.E, 3 + Math.exp(2)], { rtol: 1e-15 });
  });

  it('a diamond graph propagates only after all consumers contributed (topological order)', () => {
    const x = vec([0.5]);
    const a = exp(x);
    const b = affine(a, 2);
    const c = mul(a, b); // 2 exp(2x)
    const d = add(c, a); // 2 exp(2x) + exp(x)
    backward(sum(d));
    assertClose(Array.from(x.gradValues()!), [4 * Math.exp(1) + Math.exp(0.5)], { rtol: 1e-14 });
  });

  it('noGrad builds no graph, and restores the previous mode (also after a throw)', () => {
    const x = vec([1, 2]);
    assert.equal(isGradEnabled(), true);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return mul(exp(x), 2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.equal(isGradEnabled(), true);
    assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
    assert.equal(isGradEnabled(), true);
    noGrad(() => noGrad(() => 0));
    assert.equal(isGradEnabled(), true);
    assert.throws(() => backward(sum(y)), /backward: tensor does not require grad/);
  });

  it('backward on a non-scalar needs a gradient; the message names the shape', () => {
    const x = leaf(randn([2, 3], new Rng(1)));
    const y = tanh(x);
    assert.throws(() => backward(y), /^Error: backward: a gradient is required for a non-scalar tensor of shape \[2, 3\]/);
    backward(y, new Float64Array(6).fill(1));
    const t = Array.from(x.values()).map((v) => 1 - Math.tanh(v) ** 2);
    assertClose(Array.from(x.gradValues()!), t, { rtol: 1e-14 });
  });

  it('backward with a gradient of the wrong size is refused', () => {
    const x = leaf(randn([2, 3], new Rng(1)));
    assert.throws(() => backward(tanh(x), new Float64Array(5)), /backward: .*6.*\[2, 3\].*5|backward: .*5.*\[2, 3\]/);
  });

  it('a one-element non-0-d root needs no explicit gradient', () => {
    const x = vec([3]);
    backward(reshape(mul(x, x), [1, 1]));
    assert.deepEqual(Array.from(x.gradValues()!), [6]);
  });

  it('leaf gradients accumulate across backward calls until zeroed', () => {
    const w = leaf(Tensor.from([1, -2], [2, 1], 'float64'));
    const inp = Tensor.from([1, 2, 3, 4], [2, 2], 'float64');
    const step = (): void => backward(sum(matmul(inp, w)));
    step();
    assert.deepEqual(Array.from(w.gradValues()!), [4, 6]);
    step();
    assert.deepEqual(Array.from(w.gradValues()!), [8, 12]);
    w.gradValues()!.fill(0);
    step();
    assert.deepEqual(Array.from(w.gradValues()!), [4, 6]);
    w.grad = null;
    step();
    assert.deepEqual(Array.from(w.gradValues()!), [4, 6]);
    assert.equal(inp.grad, null, 'a constant input gets no gradient');
  });

  it('intermediate gradients and graph edges are freed after backward', () => {
    const x = vec([1, -2, 3]);
    const h = relu(x);
    const e = mul(h, 2);
    const loss = sum(e);
    assert.ok(h.gradFn && e.gradFn && loss.gradFn);
    backward(loss);
    for (const t of [h, e, loss]) {
      assert.equal(t.grad, null, 'intermediate grad freed');
      assert.equal(t.gradFn, null, 'graph edge released');
    }
    assert.deepEqual(Array.from(x.gradValues()!), [2, 0, 2]);
  });

  it('a second backward through a released graph is refused instead of silently dropping gradients', () => {
    const w = vec([1, 2]);
    const h = mul(w, 3);
    const l1 = sum(h);
    const l2 = sum(mul(h, h));
    backward(l1);
    assert.deepEqual(Array.from(w.gradValues()!), [3, 3]);
    // l2 reaches w only through h, whose graph edge the first backward released
    assert.throws(() => backward(l2), /^Error: backward: the graph through 'mul' \(shape \[2\]\) was already released by an earlier backward/);
    assert.throws(() => backward(l1), /backward: the graph through 'sum' \(shape \[\]\) was already released/);
    assert.deepEqual(Array.from(w.gradValues()!), [3, 3], 'nothing accumulated by the refused calls');
    // the supported way: one backward over the summed losses
    const v = vec([1, 2]);
    const k = mul(v, 3);
    backward(add(sum(k), sum(mul(k, k))));
    assert.deepEqual(Array.from(v.gradValues()!), [3 + 18, 3 + 36]);
  });

  it('a leaf root keeps its (seeded) gradient', () => {
    const x = leaf(Tensor.from([5], [], 'float64'));
    backward(x);
    assert.deepEqual(Array.from(x.gradValues()!), [1]);
  });

  it('only inputs that require grad receive one; constants stay untouched', () => {
    const a = vec([1, 2]);
    const b = Tensor.from([3, 4], [2], 'float64');
    backward(sum(mul(a, b)));
    assert.deepEqual(Array.from(a.gradValues()!), [3, 4]);
    assert.equal(b.grad, null);
    assert.equal(b.requiresGrad, false);
  });

  it('a deep chain does not overflow the stack (iterative topological sort)', () => {
    const x = vec([0.5]);
    let y = x;
    for (let i = 0; i < 20000; i++) y = affine(y, 1, 0.001);
    backward(sum(y));
    assert.deepEqual(Array.from(x.gradValues()!), [1]);
  });

  it('record() attaches a GradFn only when an input requires grad', () => {
    const c = Tensor.from([1], [1], 'float64');
    const out = record(Tensor.zeros([1], 'float64'), 'custom', [c], () => assert.fail('must not run'));
    assert.equal(out.gradFn, null);
    const v = vec([1]);
    const out2 = record(Tensor.zeros([1], 'float64'), 'custom', [v], () => {});
    assert.equal(out2.requiresGrad, true);
    assert.equal(out2.gradFn?.op, 'custom');
  });

  it('float32 graphs get float32 gradients', () => {
    const x = leaf(Tensor.from([1, 2], [2]));
    backward(sum(mul(x, x)));
    assert.ok(x.gradValues() instanceof Float32Array);
    assert.deepEqual(Array.from(x.gradValues()!), [2, 4]);
  });
});
