import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backward } from '../../src/tensor/autograd.js';
import { linear } from '../../src/tensor/ops/matmul.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { relu } from '../../src/tensor/ops/elementwise.js';
import { BufferRecycler } from '../../src/tensor/recycler.js';
import { allocStorage as allocBuf, allocUninit, Tensor } from '../../src/tensor/tensor.js';
import { CPU, deviceMemory, type Storage } from '../../src/tensor/storage.js';

/** The storage with every value set to v (through its host view). */
function filled(s: Storage, v: number): Storage {
  s.readSync().fill(v);
  return s;
}
import { Rng } from '../../src/util/rng.js';

test('inside a run, allocations reuse the previous run’s buffers, zeroed; outside, they are fresh', () => {
  const r = new BufferRecycler();
  const first = r.run(() => {
    const a = filled(allocBuf('float32', 8), 3);
    const b = filled(allocBuf('float64', 8), 4);
    return [a, b];
  });
  const second = r.run(() => [allocBuf('float64', 8), allocBuf('float32', 8), allocBuf('float32', 8)]);
  assert.equal(second[0], first[1]);
  assert.equal(second[1], first[0]);
  assert.notEqual(second[2], first[0], 'a buffer is lent once per run');
  assert.deepEqual(Array.from(second[0].readSync()), new Array(8).fill(0));
  assert.deepEqual(Array.from(second[1].readSync()), new Array(8).fill(0));
  assert.ok(second[2].readSync() instanceof Float32Array && second[0].readSync() instanceof Float64Array);
  assert.notEqual(allocBuf('float32', 8), second[1], 'no recycling outside run');
  // What the last run did not use again is dropped: a third run gets none of the first run's spares.
  const third = r.run(() => [allocBuf('float32', 8), allocBuf('float32', 8), allocBuf('float32', 8)]);
  assert.deepEqual(new Set(third.slice(0, 2)), new Set([second[1], second[2]]));
  assert.ok(!third.includes(second[0]));
});

test('allocUninit inside a run reuses a buffer as it was, sparing the zeroing pass', () => {
  const r = new BufferRecycler();
  const first = r.run(() => filled(allocBuf('float32', 8), 3));
  const second = r.run(() => allocUninit('float32', 8));
  assert.equal(second, first);
  assert.deepEqual(Array.from(second.readSync()), new Array(8).fill(3));
});

test('a buffer given back inside a run is lent again in that run; one it did not lend is refused', () => {
  const r = new BufferRecycler();
  r.run(() => {
    const a = filled(allocBuf('float32', 8), 5);
    assert.equal(r.giveBack(a), true);
    assert.equal(r.giveBack(a), false, 'given back once');
    const b = allocBuf('float32', 8);
    assert.equal(b, a);
    assert.deepEqual(Array.from(b.readSync()), new Array(8).fill(0));
    assert.equal(r.giveBack(deviceMemory(CPU).fromHost(new Float32Array(8))), false);
  });
  // It stays one run's worth: the next run reuses it once, not twice.
  const next = r.run(() => [allocBuf('float32', 8), allocBuf('float32', 8)]);
  assert.notEqual(next[0], next[1]);
});

test('training steps inside runs give the same bits as with fresh buffers', () => {
  const rng = new Rng(1);
  const x = Tensor.randn([50, 6], rng);
  const labels = Int32Array.from({ length: 50 }, (_, i) => i % 4);
  const make = () => {
    const init = new Rng(2);
    return [Tensor.randn([8, 6], init), Tensor.randn([8], init), Tensor.randn([4, 8], init), Tensor.randn([4], init)].map((t) => ((t.requiresGrad = true), t));
  };
  const step = (params: Tensor[]) => {
    for (const p of params) p.gradValues()?.fill(0);
    const loss = crossEntropy(linear(relu(linear(x, params[0], params[1])), params[2], params[3]), labels);
    backward(loss);
    for (const p of params) for (let i = 0; i < p.size; i++) p.values()[i] -= 0.1 * p.gradValues()![i];
    return loss.values()[0];
  };
  const fresh = make();
  const reused = make();
  const r = new BufferRecycler();
  for (let e = 0; e < 4; e++) assert.equal(r.run(() => step(reused)), step(fresh));
  for (let i = 0; i < 4; i++) assert.deepEqual(reused[i].values(), fresh[i].values());
});

test('disown: a lent buffer leaves the recycler (the next run does not hand it out); one it did not lend is refused', () => {
  const r = new BufferRecycler();
  const [kept, dropped] = r.run(() => {
    const a = allocBuf('float32', 8);
    const b = allocBuf('float32', 8);
    assert.equal(r.disown(a), true);
    return [a, b];
  });
  const next = r.run(() => [allocBuf('float32', 8), allocBuf('float32', 8)]);
  assert.equal(next[0], dropped, 'the buffer still owned comes back');
  assert.notEqual(next[1], kept, 'the disowned one does not');
  assert.equal(r.disown(kept), false);
  assert.equal(r.disown(allocBuf('float32', 8)), false, 'a buffer made outside a run');
});

test('adopt: a disowned buffer given back between runs is lent again by the next run, zeroed', () => {
  const r = new BufferRecycler();
  const kept = r.run(() => {
    const a = allocBuf('float32', 4);
    a.readSync().fill(7);
    r.disown(a);
    return a;
  });
  r.adopt(kept);
  const next = r.run(() => allocBuf('float32', 4));
  assert.equal(next, kept);
  assert.deepEqual(Array.from(next.readSync()), [0, 0, 0, 0]);
});
