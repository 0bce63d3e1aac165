import { CPU, deviceMemory } from '../../src/tensor/storage.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { ParamArena } from '../../src/nn/arena.js';
import { backendFor } from '../../src/tensor/dispatch.js';
import { Tensor } from '../../src/tensor/tensor.js';

function sample(): [string, Tensor][] {
  return [
    ['a.weight', Tensor.from([1, 2, 3, 4, 5, 6], [2, 3])],
    ['a.bias', Tensor.from([7, 8], [2])],
    ['b.weight', Tensor.from([9, 10, 11, 12], [1, 4])],
  ];
}

/** Flips one bit of the float32 at `index` of `a` (through its bytes). */
function flipBit(a: Float32Array, index: number, bit: number): void {
  const words = new Uint32Array(a.buffer, a.byteOffset, a.length);
  words[index] ^= 1 << bit;
}

describe('ParamArena', () => {
  it('packs parameters into one contiguous buffer, in order, with offsets and shapes', () => {
    const named = sample();
    const arena = ParamArena.pack(named);
    assert.equal(arena.size, 12);
    assert.deepEqual(Array.from(arena.params.readSync()), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(
      arena.entries.map((e) => [e.name, [...e.shape], e.offset, e.size]),
      [['a.weight', [2, 3], 0, 6], ['a.bias', [2], 6, 2], ['b.weight', [1, 4], 8, 4]],
    );
    assert.equal(arena.grads.readSync().length, 12);
    assert.ok(arena.grads.readSync().every((g) => g === 0));
  });

  it('advises huge pages for the parameters where the cpu backend can (their 2 MB-aligned span), values kept; small arenas and other backends none', () => {
    const w = Tensor.from(Float32Array.from({ length: 3 << 20 }, (_, i) => i % 1013), [3 << 10, 1 << 10]);
    const arena = ParamArena.pack([['w', w]]);
    const advises = backendFor({ device: CPU, dtype: 'float32' }).adviseHugePages !== undefined && existsSync('/sys/kernel/mm/transparent_hugepage/enabled');
    // 12 MB: 4–6 aligned 2 MB pages, wherever the allocator put it.
    if (advises) assert.ok(arena.hugePageBytes >= 8 << 20 && arena.hugePageBytes <= 12 << 20, `${arena.hugePageBytes} bytes advised`);
    else assert.equal(arena.hugePageBytes, 0);
    assert.ok(arena.params.readSync().every((v, i) => v === i % 1013), 'values kept');
    assert.equal(ParamArena.pack(sample()).hugePageBytes, 0, 'no 2 MB span in 48 bytes');
  });

  it('rebinds every parameter data and grad to views into the two arenas', () => {
    const named = sample();
    const arena = ParamArena.pack(named);
    for (const [name, p] of named) {
      assert.equal(p.values().buffer, arena.params.readSync().buffer, `${name}.data is not a view into the arena`);
      assert.ok(p.grad, `${name}.grad missing`);
      assert.equal(p.gradValues()!.buffer, arena.grads.readSync().buffer, `${name}.grad is not a view into the gradient arena`);
    }
    // Writes through the arena are seen by the tensors, and the other way round.
    arena.params.readSync()[6] = -1;
    assert.equal(named[1][1].values()[0], -1);
    named[2][1].values()[3] = 42;
    assert.equal(arena.params.readSync()[11], 42);
    named[0][1].gradValues()![5] = 0.5;
    assert.equal(arena.grads.readSync()[5], 0.5);
    arena.grads.readSync()[8] = 3;
    assert.equal(named[2][1].gradValues()![0], 3);
  });

  it('refuses parameters on two devices, naming the parameter: one arena per device', () => {
    const a = Tensor.from([1], [1]);
    const b = Tensor.from([2], [1]);
    // A storage claiming another device (host memory underneath), as a second device's parameter would.
    const elsewhere = Object.assign(Object.create(Object.getPrototypeOf(b.storage) as object) as object, b.storage, { device: 'gpu0' });
    b.storage = elsewhere as typeof b.storage;
    assert.throws(() => ParamArena.pack([['a', a], ['b', b]]), /parameter b is on gpu0, the arena's first parameter on cpu: one arena per device/);
  });

  it('keeps values and any existing gradient when packing', () => {
    const w = Tensor.from([1, 2], [2]);
    w.grad = deviceMemory(CPU).fromHost(Float32Array.from([0.5, -0.5]));
    const b = Tensor.from([3], [1]);
    const arena = ParamArena.pack([['w', w], ['b', b]]);
    assert.deepEqual(Array.from(arena.params.readSync()), [1, 2, 3]);
    assert.deepEqual(Array.from(arena.grads.readSync()), [0.5, -0.5, 0]);
  });

  it('refuses float64 parameters', () => {
    assert.throws(() => ParamArena.pack([['x', Tensor.zeros([2], 'float64')]]), /parameter x: arenas hold float32 parameters only/);
  });

  it('checksum: equal for equal bytes, changes when any one bit changes, 8 hex digits', async () => {
    const a = ParamArena.pack(sample());
    const b = ParamArena.pack(sample());
    const before = await a.checksum();
    assert.match(before, /^[0-9a-f]{8}$/);
    assert.equal(await b.checksum(), before);
    for (const [index, bit] of [[0, 0], [5, 31], [11, 17], [7, 22]]) {
      flipBit(a.params.readSync(), index, bit);
      assert.notEqual(await a.checksum(), before, `flipping bit ${bit} of element ${index} did not change the checksum`);
      flipBit(a.params.readSync(), index, bit);
      assert.equal(await a.checksum(), before);
    }
    // +0 and -0 compare equal as numbers but differ in one bit: the checksum must see it.
    const z1 = ParamArena.pack([['z', Tensor.from([0], [1])]]);
    const z2 = ParamArena.pack([['z', Tensor.from([-0], [1])]]);
    assert.notEqual(await z1.checksum(), await z2.checksum());
  });

  it('signature: names and shapes only, independent of values', () => {
    const a = ParamArena.pack(sample());
    assert.equal(a.signature(), 'a.weight:2x3,a.bias:2,b.weight:1x4');
    const other = sample();
    other[0][1].values().fill(99);
    assert.equal(ParamArena.pack(other).signature(), a.signature());
    const reshaped: [string, Tensor][] = [['a.weight', Tensor.zeros([3, 2])], ...sample().slice(1)];
    assert.notEqual(ParamArena.pack(reshaped).signature(), a.signature());
  });

  it('zeroGrads: zeroes the gradients and lets each parameter still bound here hand its gradient out to be written whole, once', () => {
    const named = sample();
    const arena = ParamArena.pack(named);
    const [[, a], [, bias], [, b]] = named;
    arena.grads.readSync().fill(5);
    a.ensureGrad(); // asked for before the zeroing: forgotten by it
    b.bind(b.storage, deviceMemory(CPU).alloc('float32', b.size)); // rebound elsewhere: not the arena's any more
    arena.zeroGrads();
    assert.ok(arena.grads.readSync().every((g) => g === 0));
    const handed = a.gradToOverwrite();
    assert.ok(handed, 'a just-zeroed parameter gradient is handed out to be overwritten');
    assert.equal(handed, a.grad!.buffer);
    assert.equal(a.gradToOverwrite(), null, 'only once: after that it holds a gradient to add to');
    bias.ensureGrad(); // asked for to accumulate: no longer known to be zero
    assert.equal(bias.gradToOverwrite(), null);
    assert.equal(b.gradToOverwrite(), null, 'a gradient outside the arena was not zeroed by it');
    arena.zeroGrads();
    a.bind(a.storage, a.grad); // any rebinding forgets it
    assert.equal(a.gradToOverwrite(), null);
    const fresh = sample();
    const packed = ParamArena.pack(fresh);
    ParamArena.over(packed.params, packed.grads, packed.entries).zeroGrads(); // someone else's layout: only zeroes
    assert.ok(fresh.every(([, p]) => p.gradToOverwrite() === null));
  });

  it('an empty arena is valid', async () => {
    const a = ParamArena.pack([]);
    assert.equal(a.size, 0);
    assert.equal(a.signature(), '');
    assert.match(await a.checksum(), /^[0-9a-f]{8}$/);
  });

  it('slice: a range of the arena as an arena, sharing its buffers, entries cut at the edges', () => {
    const a = ParamArena.pack([['w', Tensor.from([1, 2, 3, 4], [2, 2])], ['b', Tensor.from([5, 6], [2])]], new Set(['b']));
    const s = a.slice(3, 5);
    assert.equal(s.size, 2);
    assert.deepEqual(s.entries.map((e) => [e.name, e.offset, e.size, e.decay]), [['w', 0, 1, true], ['b', 1, 1, false]]);
    s.params.write(Float32Array.of(50), 1);
    s.grads.write(Float32Array.of(7), 0);
    assert.equal(a.params.readSync()[4], 50);
    assert.equal(a.grads.readSync()[3], 7);
    assert.deepEqual(s.decayRuns(), [{ offset: 0, size: 1, decay: true }, { offset: 1, size: 1, decay: false }]);
    assert.throws(() => a.slice(4, 7), /not inside the arena of 6/);
  });
});
