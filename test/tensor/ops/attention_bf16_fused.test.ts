/**
 * The native backend's fused bf16 attention (src/native/attention_bf16.cc) against the unfused bf16
 * path it replaces (attention.ts attentionBf16 over the bf16 gemm, which js and webgpu still run):
 * the same outputs and gradients within bf16 rounding, past one block of 128 query rows (causal
 * blocks, grouped-query, dropout, Tq != Tk), and only the visible blocks' probabilities kept.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  Tensor, backward, scaledDotProductAttention, withComputePrecision, type AttentionOptions,
} from '../../../src/tensor/index.js';
import { setBackend } from '../../../src/tensor/dispatch.js';
import { getKernel, registerKernel, unregisterKernel, type KernelConfig } from '../../../src/tensor/kernel_registry.js';
import { BufferRecycler } from '../../../src/tensor/recycler.js';
import { bf16SavedLength } from '../../../src/tensor/ops/attention.js';
import { Rng, randn } from '../../helpers/tensors.js';

interface Case { name: string; q: number[]; k: number[]; v: number[]; opts: () => AttentionOptions }

const CASES: Case[] = [
  { name: 'causal over three query blocks [1, 2, 300, 16]', q: [1, 2, 300, 16], k: [1, 2, 300, 16], v: [1, 2, 300, 16], opts: () => ({ causal: true }) },
  { name: 'causal grouped-query, 4 heads over 2, Dv != D', q: [2, 4, 260, 8], k: [2, 2, 260, 8], v: [2, 2, 260, 6], opts: () => ({ causal: true }) },
  { name: 'causal with dropout 0.2', q: [1, 2, 200, 8], k: [1, 2, 200, 8], v: [1, 2, 200, 8], opts: () => ({ causal: true, dropout: { p: 0.2, rng: new Rng(5) } }) },
  { name: 'causal, Tq > Tk (rows past Tk see every key)', q: [1, 2, 150, 8], k: [1, 2, 40, 8], v: [1, 2, 40, 8], opts: () => ({ causal: true }) },
  { name: 'full, Tq != Tk, dropout 0.25, one kv head', q: [2, 3, 20, 8], k: [2, 1, 33, 8], v: [2, 1, 33, 5], opts: () => ({ dropout: { p: 0.25, rng: new Rng(9) } }) },
];

const FUSED = ['attention', 'attentionBackward'] as const;

/** Runs fn with the native bf16 attention kernels taken out of the registry (the unfused path), then puts them back. */
function unfused<T>(fn: () => T): T {
  const saved = FUSED.map((name) => getKernel(name, 'cpu', 'bfloat16'));
  FUSED.forEach((name) => unregisterKernel(name, 'cpu', 'bfloat16'));
  try {
    return fn();
  } finally {
    saved.forEach((k) => k && registerKernel(k as KernelConfig));
  }
}

interface Run { out: Float32Array; grads: Float32Array[]; heldBytes: number }

function run(c: Case): Run {
  const rng = new Rng(17);
  const ins = [c.q, c.k, c.v].map((shape) => {
    const t = randn(shape, rng, 'float32');
    t.requiresGrad = true;
    return t;
  });
  const gy = randn([...c.q.slice(0, -1), c.v[c.v.length - 1]], rng, 'float32');
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  let out = new Float32Array(0);
  withComputePrecision('bf16', () => recycler.run(() => {
    const y: Tensor = scaledDotProductAttention(ins[0], ins[1], ins[2], c.opts());
    heldBytes = recycler.bytesLent;
    out = Float32Array.from(y.values());
    backward(y, gy.values() as Float32Array);
  }));
  return { out, grads: ins.map((t) => Float32Array.from(t.gradValues()!)), heldBytes };
}

/** |a − b| ≤ 1 % of b's largest magnitude: two orders of bf16 products and roundings, one result. */
function assertNear(a: Float32Array, b: Float32Array, what: string): void {
  const scale = Math.max(...b.map(Math.abs));
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 0.01 * scale, `${what} [${i}]: ${a[i]} vs ${b[i]} (max ${scale})`);
}

describe('fused bf16 attention (native) against the unfused bf16 path', () => {
  let native = true;
  before(() => {
    try {
      setBackend('native');
    } catch (e) {
      if (process.env.CI === 'true') throw e;
      native = false;
    }
  });

  for (const c of CASES) {
    it(`equals it: ${c.name}`, (t) => {
      if (!native) return t.skip('no native addon here');
      const fused = run(c);
      const plain = unfused(() => run(c));
      assertNear(fused.out, plain.out, 'out');
      ['q', 'k', 'v'].forEach((name, i) => assertNear(fused.grads[i], plain.grads[i], `g${name}`));
    });
  }

  it('keeps only the visible blocks\' bf16 probabilities (5/8 of a causal square over four blocks)', (t) => {
    if (!native) return t.skip('no native addon here');
    const c: Case = { name: 'causal 512', q: [1, 1, 512, 8], k: [1, 1, 512, 8], v: [1, 1, 512, 8], opts: () => ({ causal: true }) };
    const g = { bh: 1, groups: 1, tq: 512, tk: 512, d: 8, dv: 8, scale: 1, causal: true };
    assert.equal(bf16SavedLength(g), (512 * 512 * 5) / 8);
    assert.equal(unfused(() => run(c)).heldBytes - run(c).heldBytes, (512 * 512 * 3 / 8) * 2);
  });
});
