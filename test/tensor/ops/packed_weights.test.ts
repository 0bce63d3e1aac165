/**
 * Packed bf16 weights (ops/packed_weights.ts, src/native/gemm_bf16_packed.cc): a weight marked
 * unchanging multiplies from a copy in oneDNN's blocked layout from its second use on (not at one
 * row: the thin kernel's), with the plain product's bits; a
 * write through its storage or a new storage packs again; the dY·W layout (forward = false) and a
 * fused bias agree with the plain bf16 GEMM too. Native backend only (the js backend has no
 * packing: its products never pack); CI=true fails where the addon is missing. Where the build
 * cannot pack (no oneDNN: OpenBLAS-only, arm64; or oneDNN without a fast bf16 matmul at this CPU
 * level) the same uses must give the same values with nothing packed: test/helpers/bf16_packing.ts
 * asks the addon, and holds the answer to the build and the CPU table where those decide it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Tensor, backendFor, backward, isPacked, linear, markUnchanging, nativeAvailable, noGrad, setBackend, setWeightPacking, toBf16,
  withComputePrecision, type PackedWeight,
} from '../../../src/tensor/index.js';
import { applyLora, holdBaseInBf16 } from '../../../src/nn/lora/index.js';
import { Linear } from '../../../src/nn/layers/linear.js';
import { Module } from '../../../src/nn/module.js';
import { Rng, randn } from '../../helpers/tensors.js';
import { bf16PackingExpected, nativePacksBf16 } from '../../helpers/bf16_packing.js';
import { nativeCpuTable, nativeInternals } from '../../../src/tensor/backends/native.js';

const skip = !nativeAvailable() && process.env.CI !== 'true' && 'the native addon is not built here';

function seeded(seed: number, shape: number[]): Tensor {
  return Tensor.from(randn(shape, new Rng(seed)).values(), shape, 'float32');
}

/** A bf16 weight [rows, cols] of its own (as holdBaseInBf16 holds one). */
function bf16Weight(seed: number, rows: number, cols: number): Tensor {
  return noGrad(() => toBf16(seeded(seed, [rows, cols])));
}

/** x·wᵀ (+ b) on bf16 operands (x cast as LoRA casts its input for a base held in bf16). */
const product = (x: Tensor, w: Tensor, b: Tensor | null): number[] =>
  Array.from(noGrad(() => withComputePrecision('bf16', () => linear(toBf16(x), w, b))).values());

/** x's gradient through a bf16 linear on w (its forward discarded). */
function gradOfX2(w: Tensor, M: number): void {
  const x = seeded(24, [M, w.shape[1]]);
  x.requiresGrad = true;
  const y = withComputePrecision('bf16', () => linear(toBf16(x), w, null));
  backward(y, new Float32Array(y.size).fill(1));
}

const packing = () => backendFor({ device: 'cpu', dtype: 'float32' }).bfloat16!;

describe('packed bf16 weights', { skip }, () => {
  let previous = '';
  before(() => {
    previous = backendFor({ device: 'cpu', dtype: 'float32' }).name;
    setBackend('native');
  });
  after(() => setBackend(previous));
  /** Whether this build packs (false: every use below runs the plain product, and nothing is packed). */
  const packs = nativePacksBf16();
  const expected = bf16PackingExpected();

  it('packs exactly where the build and the CPU table say: never without oneDNN; with it on x86-64 exactly at levels with AVX-512', { skip: expected === null && `oneDNN's own dispatch decides at cpu level ${nativeCpuTable()?.level}` }, () => {
    assert.equal(packs, expected, `libraries ${JSON.stringify(nativeInternals()?.libraries)}, cpu level ${nativeCpuTable()?.level}`);
  });

  it('a marked weight multiplies from its packed copy, bit for bit the plain product (bias fused)', () => {
    const [rows, cols] = [45, 70];
    const x = seeded(1, [37, cols]);
    const b = seeded(2, [rows]);
    const plainW = bf16Weight(3, rows, cols);
    const markedW = bf16Weight(3, rows, cols);
    markUnchanging(markedW);
    const plain = product(x, plainW, b);
    assert.deepEqual(product(x, markedW, b), plain);
    assert.equal(isPacked(markedW), false, 'one use alone does not pack');
    assert.deepEqual(product(x, markedW, b), plain);
    assert.equal(isPacked(markedW), packs);
    assert.equal(isPacked(plainW), false);
    // Other row counts reuse the one packed copy.
    assert.deepEqual(product(seeded(4, [3, cols]), markedW, null), product(seeded(4, [3, cols]), plainW, null));
  });

  it('a single row keeps the thin kernel: nothing packs', () => {
    const w = bf16Weight(18, 30, 64);
    markUnchanging(w);
    for (let i = 0; i < 3; i++) product(seeded(19, [1, 64]), w, null);
    assert.equal(isPacked(w), false);
  });

  it('a write through the storage, or a new storage, packs the new values', () => {
    const [rows, cols] = [24, 40];
    const x = seeded(5, [9, cols]);
    const w = bf16Weight(6, rows, cols);
    markUnchanging(w);
    const twice = (): number[] => (product(x, w, null), product(x, w, null));
    twice();
    assert.equal(isPacked(w), packs);
    const other = bf16Weight(7, rows, cols);
    w.storage.write(other.values());
    assert.equal(isPacked(w), false);
    assert.deepEqual(twice(), product(x, other, null));
    assert.equal(isPacked(w), packs);
    const third = bf16Weight(8, rows, cols);
    w.storage = third.storage;
    assert.deepEqual(twice(), product(x, third, null));
    assert.equal(isPacked(w), packs);
  });

  it('packs nothing while packing is off', () => {
    const w = bf16Weight(9, 16, 32);
    markUnchanging(w);
    const was = setWeightPacking(false);
    try {
      for (let i = 0; i < 3; i++) product(seeded(10, [5, 32]), w, null);
      assert.equal(isPacked(w), false);
    } finally {
      setWeightPacking(was);
    }
  });

  it('the dY·W layout (forward = false) with beta = 1 equals the plain bf16 GEMM', () => {
    const [M, rows, cols] = [33, 20, 50];
    const w = bf16Weight(11, rows, cols).buffer;
    const gy = bf16Weight(12, M, rows).buffer;
    const start = Float32Array.from(seeded(13, [M, cols]).values());
    const plain = start.slice();
    packing().gemm!(false, false, M, cols, rows, 1, gy, 0, w, 0, 1, plain as never, 0, 1, null);
    const packed = packing().packWeight!(w, rows, cols, false, M);
    if (!packs) {
      assert.equal(packed, null, 'a build that packs no forward weight packs no dY·W one either');
      return;
    }
    assert.ok(packed, 'oneDNN packs a bf16 weight on this machine');
    const viaPacked = start.slice();
    assert.equal(packing().gemmPacked!(M, gy, packed, 1, viaPacked as never, null), true);
    assert.deepEqual(Array.from(viaPacked), Array.from(plain));
  });

  it('a vocabulary-sized frozen weight (≥ 8,192 rows) packs its dY·W layout too: x\'s gradient as the plain product\'s', () => {
    const [M, rows, cols] = [12, 8192, 16];
    const gradOfX = (w: Tensor): number[] => {
      const x = seeded(20, [M, cols]);
      x.requiresGrad = true;
      const y = withComputePrecision('bf16', () => linear(toBf16(x), w, null));
      backward(y, Float32Array.from(seeded(21, [M, rows]).values()));
      return Array.from(x.grad!.readSync());
    };
    const plain = gradOfX(bf16Weight(22, rows, cols));
    const marked = bf16Weight(22, rows, cols);
    markUnchanging(marked);
    assert.deepEqual(gradOfX(marked), plain);
    assert.equal(isPacked(marked, false), false, 'one backward alone does not pack');
    const packed = gradOfX(marked);
    assert.equal(isPacked(marked, false), packs);
    const scale = Math.max(...plain.map(Math.abs));
    assert.ok(packed.every((g, i) => Math.abs(g - plain[i]) <= 1e-5 * scale), 'within float32 summation order of the plain product');
    const small = bf16Weight(23, 64, cols);
    markUnchanging(small);
    for (let i = 0; i < 3; i++) gradOfX2(small, M);
    assert.equal(isPacked(small, false), false, 'a layer-sized weight keeps the plain dX product');
  });

  it('refuses a handle that is no packed weight, naming the argument (without oneDNN: runs nothing, C untouched)', () => {
    const w = bf16Weight(14, 4, 8);
    const C = new Float32Array(8).fill(7);
    const call = () => packing().gemmPacked!(2, w.buffer, {} as PackedWeight, 0, C as never, null);
    if (nativeInternals()!.libraries.dnnl) assert.throws(call, /packed/);
    else assert.equal(call(), false);
    assert.deepEqual(Array.from(C), new Array(8).fill(7));
  });

  it('LoRA\'s base held in bf16 is packed, and the layer\'s output is the same with packing off', () => {
    class One extends Module {
      readonly q_proj = this.registerModule('q_proj', new Linear(32, 24, new Rng(15)));
      forward(x: Tensor): Tensor { return this.q_proj.forward(x); }
    }
    const model = new One();
    applyLora(model, { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj'], seed: 16 });
    holdBaseInBf16(model);
    const x = seeded(17, [10, 32]); // more rows than the thin kernel takes (THIN_ROWS)
    const run = (): number[] => Array.from(noGrad(() => withComputePrecision('bf16', () => model.forward(x))).values());
    const was = setWeightPacking(false);
    const off = run();
    setWeightPacking(was);
    run();
    assert.deepEqual(run(), off);
    const base = model.parameters().find((p) => p.dtype === 'bfloat16')!;
    assert.equal(isPacked(base), packs);
  });
});
