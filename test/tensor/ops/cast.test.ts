/**
 * bf16 as a dtype (issue 29 §2): toBf16 is a cast, and matmul/linear/conv2d/attention dispatch on
 * their operands' dtype, whatever the step's precision. A product of casts equals the same op run
 * under a bf16 step (autocast inserts the same casts), bit for bit, gradients included; the
 * gradients are float32 and reach the casts' sources.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Tensor, backward, conv2d, lastUse, layerNorm, linear, matmul, scaledDotProductAttention, toBf16, withComputePrecision,
} from '../../../src/tensor/index.js';
import { sharedBf16 } from '../../../src/tensor/ops/cast.js';
import { Rng, randn } from '../../helpers/tensors.js';

/** float32 leaves of seeded values, one per shape. */
function leaves(seed: number, shapes: number[][]): Tensor[] {
  const rng = new Rng(seed);
  return shapes.map((s) => {
    const t = Tensor.from(randn(s, rng).values(), s, 'float32');
    t.requiresGrad = true;
    return t;
  });
}

/** Output values and every leaf's gradient of op over fresh leaves, seeded with ones. */
function run(op: (...xs: Tensor[]) => Tensor, shapes: number[][]): { y: number[]; grads: number[][]; dtype: string } {
  const xs = leaves(7, shapes);
  const y = op(...xs);
  backward(y, new Float32Array(y.size).fill(1));
  for (const x of xs) assert.equal(x.grad?.dtype, 'float32');
  return { y: Array.from(y.values()), grads: xs.map((x) => Array.from(x.grad!.readSync())), dtype: y.dtype };
}

const CASES: { name: string; shapes: number[][]; op: (...xs: Tensor[]) => Tensor; cast: (...xs: Tensor[]) => Tensor }[] = [
  { name: 'matmul', shapes: [[2, 5, 8], [8, 3]], op: (a, b) => matmul(a, b), cast: (a, b) => matmul(toBf16(a), toBf16(b)) },
  { name: 'linear', shapes: [[4, 6], [5, 6], [5]], op: (x, w, b) => linear(x, w, b), cast: (x, w, b) => linear(toBf16(x), toBf16(w), b) },
  {
    name: 'conv2d', shapes: [[1, 3, 5, 5], [4, 3, 3, 3], [4]],
    op: (x, w, b) => conv2d(x, w, b, { padding: 1 }), cast: (x, w, b) => conv2d(toBf16(x), toBf16(w), b, { padding: 1 }),
  },
  {
    name: 'attention', shapes: [[2, 6, 4], [2, 6, 4], [2, 6, 4]],
    op: (q, k, v) => scaledDotProductAttention(q, k, v, { causal: true }),
    cast: (q, k, v) => scaledDotProductAttention(toBf16(q), toBf16(k), toBf16(v), { causal: true }),
  },
];

describe('bf16 as a dtype', () => {
  it('toBf16 rounds a float32 tensor to a bfloat16 one of its shape, and refuses other dtypes', () => {
    const x = Tensor.from([1, 1 + 2 ** -9, 3.14159], [3], 'float32');
    const c = toBf16(x);
    assert.equal(c.dtype, 'bfloat16');
    assert.deepEqual(c.shape, [3]);
    assert.deepEqual(Array.from(c.values() as Uint16Array), [0x3f80, 0x3f80, 0x4049]);
    assert.throws(() => toBf16(Tensor.from([1], [1], 'float64')), /toBf16: casts a float32 tensor, got float64/);
  });

  for (const c of CASES) {
    it(`${c.name} on casts, in an fp32 step, is the ${c.name} of a bf16 step, output and float32 gradients alike`, () => {
      const byDtype = withComputePrecision('fp32', () => run(c.cast, c.shapes));
      const byPolicy = withComputePrecision('bf16', () => run(c.op, c.shapes));
      const float32 = withComputePrecision('fp32', () => run(c.op, c.shapes));
      assert.equal(byDtype.dtype, 'float32');
      assert.deepEqual(byDtype, byPolicy);
      assert.notDeepEqual(byDtype.y, float32.y, 'the casts rounded the operands');
    });
  }

  it('refuses a bfloat16 operand beside a float32 one, and a bfloat16 tensor that requires grad', () => {
    const [a, b] = leaves(3, [[2, 3], [3, 2]]);
    assert.throws(() => matmul(toBf16(a), b), /matmul: operands' dtypes differ \(bfloat16, float32\)/);
    const own = toBf16(a);
    const mine = new Tensor(own.storage, own.shape, true);
    assert.throws(() => matmul(mine, toBf16(b)), /gradients are float32, so cast a float32 tensor/);
  });

  it('leaves a caller\'s cast be: one toBf16 feeds two ops, and both gradients reach its source', () => {
    const [a, w] = leaves(11, [[3, 4], [4, 4]]);
    const wb = toBf16(w);
    const before = Array.from(wb.values());
    const y1 = matmul(toBf16(a), wb);
    matmul(toBf16(w), toBf16(w)); // transient casts of wb's size come and go between the two uses
    const y2 = matmul(toBf16(a), wb);
    assert.deepEqual(Array.from(wb.values()), before);
    assert.deepEqual(Array.from(y2.values()), Array.from(y1.values()));
    backward(y1, new Float32Array(y1.size).fill(1));
    const once = Array.from(w.grad!.readSync());
    backward(y2, new Float32Array(y2.size).fill(1));
    assert.deepEqual(Array.from(w.grad!.readSync()), once.map((g) => 2 * g));
  });

  it('hands over only through its own casts: a caller\'s cast of a lastUse activation leaves its values', () => {
    const [x, w, gamma, beta] = leaves(13, [[4, 8], [8, 8], [8], [8]]);
    const h = layerNorm(x, gamma, beta);
    const y = linear(toBf16(lastUse(h)), toBf16(w), null);
    assert.equal(h.values().length, 32);
    backward(y, new Float32Array(y.size).fill(1));
    assert.ok(gamma.grad!.readSync().some((g) => g !== 0));
    const released = layerNorm(x, gamma, beta);
    withComputePrecision('bf16', () => linear(lastUse(released), w, null));
    assert.throws(() => released.values(), /released after 'linear'/);
  });

  it('sharedBf16 rounds an activation once for every op that reads it, again after a write', () => {
    const x = Tensor.from(randn([4, 10], new Rng(8)).values(), [4, 10], 'float32');
    const cast = sharedBf16(x);
    assert.equal(sharedBf16(x), cast);
    x.storage.write(randn([4, 10], new Rng(9)).values() as Float32Array);
    assert.notEqual(sharedBf16(x), cast);
  });

  it('takes a bfloat16 tensor that is no cast as it is (inference)', () => {
    const [a, b] = leaves(5, [[2, 3], [3, 2]]);
    const own = new Tensor(toBf16(a).storage, a.shape);
    const y = matmul(own, toBf16(b));
    assert.deepEqual(Array.from(y.values()), withComputePrecision('bf16', () => Array.from(matmul(a, b).values())));
  });
});
