import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backward } from '../../src/tensor/autograd.js';
import { POOL_MIN_ELEMENTS, giveBack, pooledBytes, setPoolEnabled, startPass, takePooled } from '../../src/tensor/buffer_pool.js';
import { backend, nativeAvailable, setBackend } from '../../src/tensor/dispatch.js';
import { gelu } from '../../src/tensor/ops/elementwise.js';
import { reshape } from '../../src/tensor/ops/layout.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { linear } from '../../src/tensor/ops/matmul.js';
import { allocStorage as allocBuf, Tensor } from '../../src/tensor/tensor.js';
import { CPU, deviceMemory } from '../../src/tensor/storage.js';
import { Rng } from '../../src/util/rng.js';

// Sizes just past the pool's threshold: the logits and their gradient are pooled, the rest not.
const ROWS = 256;
const CLASSES = POOL_MIN_ELEMENTS / ROWS + 8;
const WIDTH = 16;

function params(): Tensor[] {
  const rng = new Rng(7);
  const ps = [Tensor.randn([WIDTH, WIDTH], rng, 'float32', 0.3), Tensor.randn([WIDTH], rng), Tensor.randn([CLASSES, WIDTH], rng, 'float32', 0.3), Tensor.randn([CLASSES], rng)];
  for (const p of ps) p.requiresGrad = true;
  return ps;
}

/** A few SGD steps; the logits of every step are kept and returned, to be read after later steps ran. */
function train(ps: Tensor[], x: Tensor, labels: Int32Array, steps: number): { losses: number[]; logits: Tensor[] } {
  const losses: number[] = [];
  const logits: Tensor[] = [];
  for (let s = 0; s < steps; s++) {
    for (const p of ps) p.gradValues()?.fill(0);
    const out = linear(gelu(linear(x, ps[0], ps[1])), ps[2], ps[3]);
    const loss = crossEntropy(out, labels);
    backward(loss);
    for (const p of ps) for (let i = 0; i < p.size; i++) p.values()[i] -= 0.5 * p.gradValues()![i];
    losses.push(loss.item());
    logits.push(out);
  }
  return { losses, logits };
}

test('training steps with large buffers reused give the same bits as with fresh ones, and kept outputs stay intact', () => {
  const rng = new Rng(3);
  const x = Tensor.randn([ROWS, WIDTH], rng);
  const labels = Int32Array.from({ length: ROWS }, (_, i) => (i % 5 === 0 ? -1 : rng.int(CLASSES)));
  setPoolEnabled(false);
  const fresh = params();
  const a = train(fresh, x, labels, 3);
  const snapshots = a.logits.map((t) => Float32Array.from(t.values()));
  setPoolEnabled(true);
  const pooled = params();
  const b = train(pooled, x, labels, 3);
  assert.deepEqual(b.losses, a.losses);
  for (let i = 0; i < 4; i++) assert.deepEqual(pooled[i].values(), fresh[i].values(), `parameter ${i}`);
  // The logits of step 0 are still the user's: no later step wrote into them.
  b.logits.forEach((t, i) => assert.deepEqual(t.values(), snapshots[i], `logits of step ${i}`));
  assert.ok(pooledBytes() >= ROWS * CLASSES * 4, 'the logits-sized gradient went back to the pool');
  const distinct = new Set(b.logits.map((t) => t.values()));
  assert.equal(distinct.size, 3, 'each step’s logits have a buffer of their own');
});

for (const name of ['js', 'native'] as const) {
  test(`cross-entropy's in-place gradient (${name}) has the bits of the accumulating one`, { skip: name === 'native' && !nativeAvailable() }, () => {
    const prev = backend().name;
    setBackend(name);
    try {
      const rng = new Rng(5);
      const rows = 12;
      const cols = 7;
      const labels = Int32Array.from({ length: rows }, (_, i) => (i === 3 ? -1 : rng.int(cols)));
      const leafA = Tensor.randn([rows, cols], rng);
      const leafB = Tensor.from(leafA.values(), [rows, cols]);
      leafA.requiresGrad = leafB.requiresGrad = true;
      // A leaf takes the accumulating path; an intermediate (reshape of a leaf) the in-place one.
      backward(crossEntropy(leafA, labels), Float32Array.of(0.7));
      backward(crossEntropy(reshape(leafB, [rows, cols]), labels), Float32Array.of(0.7));
      assert.deepEqual(leafB.gradValues(), leafA.gradValues());
      assert.deepEqual(Array.from(leafB.gradValues()!.subarray(3 * cols, 4 * cols)), new Array(cols).fill(0), 'an ignored row gets no gradient');
    } finally {
      setBackend(prev);
    }
  });
}

test('the pool takes back only large buffers allocBuf made, and drops what two passes did not reuse', () => {
  setPoolEnabled(false);
  setPoolEnabled(true);
  giveBack(deviceMemory(CPU).fromHost(new Float32Array(POOL_MIN_ELEMENTS)));
  assert.equal(pooledBytes(), 0, 'a buffer the engine did not make is refused');
  const small = allocBuf('float32', 16);
  giveBack(small);
  assert.equal(pooledBytes(), 0, 'small buffers are left to the system allocator');
  const big = allocBuf('float32', POOL_MIN_ELEMENTS);
  big.readSync().fill(9);
  giveBack(big);
  giveBack(big);
  assert.equal(pooledBytes(), big.byteLength, 'given back once, however often it is offered');
  const again = allocBuf('float32', POOL_MIN_ELEMENTS);
  assert.equal(again, big);
  assert.equal(again.readSync()[123], 0, 'allocBuf zeroes a reused buffer');
  giveBack(again);
  startPass();
  assert.equal(pooledBytes(), big.byteLength, 'kept through the next pass');
  startPass();
  assert.equal(pooledBytes(), 0, 'dropped after a second pass without use');
  assert.equal(takePooled(CPU, 'float32', POOL_MIN_ELEMENTS), null);
});
