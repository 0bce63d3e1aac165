/**
 * The fused Llama decode block (src/nn/layers/llama_fused_decode.ts, src/native/llama_decode.cc)
 * against the same block run op by op: a prompt prefilled, then decode steps with the fused call
 * and again with the ops, every step's logits equal bit for bit (the call runs the ops' kernels in
 * their order), for Llama with grouped kv heads and Llama 3's rotary scaling, Qwen2's q/k/v biases
 * and Qwen3's q/k norms, over float32 weights, Q8_0, Q4_0, Q4_K_M's mix (Q4_K and Q6_K), MLX 4-bit
 * and NF4; and in a bf16 step (float32 and Q8_0 weights). And where it does not apply, the ops run
 * and the call is never made.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cachedStep } from '../../../src/generate/generate.js';
import { loadGenerator } from '../../../src/generate/load_generator.js';
import { exportGguf } from '../../../src/nn/interchange/gguf_export.js';
import { weightCasts } from '../../../src/generate/inference_forward.js';
import { KvCache, SequenceCache } from '../../../src/generate/kv_cache.js';
import { setFusedDecode } from '../../../src/nn/layers/llama_fused_decode.js';
import { applyLora } from '../../../src/nn/lora/apply.js';
import type { LlamaSpec } from '../../../src/nn/models/llama.js';
import { type QuantScheme, quantizeModel } from '../../../src/nn/quantize_model.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import type { LlamaDecodeBlock } from '../../../src/tensor/backend.js';
import { loadNativeBackend } from '../../../src/tensor/backends/native.js';
import { backendFor, setBackend } from '../../../src/tensor/dispatch.js';
import { type Precision, withComputePrecision } from '../../../src/tensor/precision.js';
import { CPU, type DeviceBuffer, deviceMemory } from '../../../src/tensor/storage.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { randomModel } from '../../generate/families.js';
import type { CausalLm } from '../../../src/generate/generate.js';

const loaded = loadNativeBackend();
const skip = loaded.backend ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

const llama = (o: Partial<LlamaSpec>): LlamaSpec => ({
  type: 'llama', modelType: 'llama', vocabSize: 61, context: 64, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0, ...o,
});

const VARIANTS: [string, LlamaSpec][] = [
  ['llama (4 heads / 2 kv heads, llama3 rope scaling)', llama({ ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 } })],
  ['qwen2 (q/k/v biases, tied)', llama({ modelType: 'qwen2', qkvBias: true, tieEmbeddings: true, heads: 8, kvHeads: 2, headDim: 8 })],
  ['qwen3 (q/k norms)', llama({ modelType: 'qwen3', qkNorm: true, heads: 2, kvHeads: 1, headDim: 32 })],
];
/** Rows whole super-blocks of 256 for Q4_K_M's K-quants, else its fallbacks would be the Q4_0-like formats already run. */
const K_QUANT_SHAPE: Partial<LlamaSpec> = { width: 256, intermediate: 512, heads: 4, kvHeads: 2, headDim: 64 };
/** 'f32': the float32 weights as they are. */
const SCHEMES: (QuantScheme | 'f32')[] = ['f32', 'q8_0', 'q4_0', 'q4_k_m', 'mlx4', 'nf4'];

/** What countingFused saw: blocks run fused (by the block's call or in a stack's), stack steps, plans made, and the formats. */
interface FusedCounts {
  calls: () => number;
  formats: Set<string>;
  stackSteps: () => number;
  plans: () => number;
}

/** The backend's fused calls counted — a block's call, or each block of a stack's step — and their formats kept, for the duration of fn. */
async function countingFused<T>(fn: (calls: () => number, formats: Set<string>, counts: FusedCounts) => Promise<T>): Promise<T> {
  const before = backendFor({ device: 'cpu', dtype: 'float32' }).name;
  const registered = setBackend('native');
  const [fused, plan, stack] = [registered.llamaDecodeLayer!, registered.llamaDecodePlan!, registered.llamaDecodeStack!];
  let [calls, stackSteps, plans] = [0, 0, 0];
  const formats = new Set<string>();
  registered.llamaDecodeLayer = (b: LlamaDecodeBlock<DeviceBuffer>) => {
    calls++;
    b.formats.forEach((f) => formats.add(f));
    fused(b);
  };
  registered.llamaDecodePlan = (shape, blocks) => {
    plans++;
    blocks.forEach((b) => b.formats.forEach((f) => formats.add(f)));
    return plan(shape, blocks);
  };
  registered.llamaDecodeStack = (p, step) => {
    calls += step.kCaches.length;
    stackSteps++;
    stack(p, step);
  };
  const counts = { calls: () => calls, formats, stackSteps: () => stackSteps, plans: () => plans };
  try {
    return await fn(() => calls, formats, counts);
  } finally {
    [registered.llamaDecodeLayer, registered.llamaDecodePlan, registered.llamaDecodeStack] = [fused, plan, stack];
    setBackend(before);
  }
}

/**
 * Logits of a prefill of 5 ids then one step per remaining id; `fusedAt(step)` says whether that
 * step may fuse. In bf16, with the generation's weight casts (as generate() holds them).
 */
async function decodeLogits(model: CausalLm, ids: number[], fusedAt: (step: number) => boolean, precision: Precision = 'fp32'): Promise<Float32Array[]> {
  const cache = new KvCache();
  const casts = weightCasts(model, precision);
  const out = [await cachedStep(model, ids.slice(0, 5), cache, precision, casts)];
  for (let t = 5; t < ids.length; t++) {
    const before = setFusedDecode(fusedAt(t));
    try {
      out.push(await cachedStep(model, [ids[t]], cache, precision, casts));
    } finally {
      setFusedDecode(before);
    }
  }
  return out;
}

function assertSameBits(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((row, step) => {
    const i = row.findIndex((v, j) => !Object.is(v, b[step][j]));
    assert.equal(i, -1, `${what}: step ${step}, logit ${i}: ${row[i]} fused, ${b[step][i]} by the ops`);
  });
}

function assertDiffer(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.ok(a.some((row, step) => row.some((v, j) => !Object.is(v, b[step][j]))), what);
}

function quantizedModel(spec: LlamaSpec, scheme: QuantScheme | 'f32', seed: number): CausalLm {
  const model = randomModel(spec, seed);
  if (scheme !== 'f32') quantizeModel(model, spec, scheme);
  return model;
}

describe('a fused Llama decode block gives the ops\' logits bit for bit', { skip }, () => {
  const ids = Array.from({ length: 13 }, (_, i) => (i * 17 + 3) % 61);
  for (const [name, base] of VARIANTS) {
    for (const scheme of SCHEMES) {
      test(`${name}, ${scheme}: 8 decode steps`, async () => {
        const spec = scheme === 'q4_k_m' ? { ...base, ...K_QUANT_SHAPE } : base;
        const model = quantizedModel(spec, scheme, 11);
        await countingFused(async (calls, formats) => {
          const byOps = await decodeLogits(model, ids, () => false);
          assert.equal(calls(), 0);
          const fused = await decodeLogits(model, ids, () => true);
          assert.equal(calls(), spec.layers * (ids.length - 5), 'one call a layer a decode step (the prefill runs the ops)');
          if (scheme === 'q4_k_m') assert.deepEqual([...formats].sort(), ['q4_k', 'q6_k'], 'llama.cpp\'s mix: Q6_K in the first and last layers\' v and down');
          assertSameBits(fused, byOps, `${name} ${scheme}`);
        });
      });
    }
  }

  for (const [name, base] of VARIANTS) {
    for (const scheme of ['f32', 'q8_0'] as const) {
      test(`${name}, ${scheme}, a bf16 step (x rounded for each float weight's held cast, the cache in bf16): 8 decode steps`, async () => {
        const model = quantizedModel(base, scheme, 12);
        await countingFused(async (calls, formats) => {
          const byOps = await decodeLogits(model, ids, () => false, 'bf16');
          const fused = await decodeLogits(model, ids, () => true, 'bf16');
          assert.equal(calls(), base.layers * (ids.length - 5));
          assert.deepEqual([...formats], [scheme === 'f32' ? 'bfloat16' : 'q8_0']);
          assertSameBits(fused, byOps, `${name} ${scheme} bf16`);
          assertDiffer(fused, await decodeLogits(model, ids, () => true), 'the bf16 step\'s logits are not the float32 step\'s');
        });
      });
    }
  }

  test('a float32 step runs every block in one stack call, its plan made once and again when a weight changes', async () => {
    const [, spec] = VARIANTS[1];
    const model = quantizedModel(spec, 'q8_0', 5);
    await countingFused(async (calls, _formats, counts) => {
      const fused = await decodeLogits(model, ids, () => true);
      assert.equal(counts.stackSteps(), ids.length - 5, 'one call a step');
      assert.equal(counts.plans(), 1);
      assertSameBits(fused, await decodeLogits(model, ids, () => false), 'the stack against the ops');
      // Block 1's up_proj given block 0's values, in a buffer of its own: the held plan is not used again.
      const blocks = (model as unknown as { model: { blocks: Array<{ ffn: { up_proj: { weight: Tensor } } }> } }).model.blocks;
      const up = blocks[1].ffn.up_proj.weight;
      up.holdFrozen(deviceMemory(CPU).fromHost((blocks[0].ffn.up_proj.weight.buffer as unknown as Uint8Array).slice(), up.dtype));
      const after = await decodeLogits(model, ids, () => true);
      assert.equal(counts.plans(), 2);
      assertSameBits(after, await decodeLogits(model, ids, () => false), 'the new plan against the ops');
      assertDiffer(after, fused, 'the changed weight changed the logits');
      assert.equal(calls(), 2 * spec.layers * (ids.length - 5));
    });
  });

  test('a generator loaded from a GGUF file, a block\'s q, k, v and gate, up back to back in its huge pages: one product each, the ops\' logits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smolcluster-fused-gguf-'));
    try {
      const tokenizer = join(dir, 'tokenizer.json');
      writeFileSync(tokenizer, JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(Array.from({ length: 61 }, (_, i) => [`t${i}`, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
      // (Without the variants' rotary scaling: its test-sized original context is none a GGUF file's factors are read back as.)
      const plain = { ...VARIANTS[0][1], ropeScaling: null };
      for (const [name, spec, scheme] of [['llama', plain, 'q8_0'], ['qwen2 (biases after the merged product)', VARIANTS[1][1], 'q4_0'],
        ['llama, Q4_K_M\'s mix', { ...plain, ...K_QUANT_SHAPE }, 'q4_k_m']] as const) {
        const file = join(dir, `${scheme}.gguf`);
        await exportGguf(file, randomModel(spec, 21), spec, { quantize: scheme, tokenizer: { json: tokenizer } });
        const { model } = await loadGenerator(file, { tokenizer: 'bytes' });
        const block = (model as unknown as { model: { blocks: Array<{ self_attn: Record<'q_proj' | 'k_proj' | 'v_proj', { weight: Tensor }> }> } }).model.blocks[1];
        const [q, k, v] = (['q_proj', 'k_proj', 'v_proj'] as const).map((n) => block.self_attn[n].weight.buffer as unknown as Uint8Array);
        assert.ok(q.buffer === k.buffer && q.byteOffset + q.byteLength === k.byteOffset && k.byteOffset + k.byteLength === v.byteOffset, `${name}: q, k and v back to back`);
        await countingFused(async (_calls, _formats, counts) => {
          const fused = await decodeLogits(model, ids, () => true);
          assert.equal(counts.stackSteps(), ids.length - 5);
          assertSameBits(fused, await decodeLogits(model, ids, () => false), name);
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('steps through the fused block and steps through the ops continue one cache', async () => {
    const [, spec] = VARIANTS[0];
    const model = quantizedModel(spec, 'q4_0', 3);
    const ids = Array.from({ length: 12 }, (_, i) => (i * 13 + 4) % 61);
    await countingFused(async (calls) => {
      const byOps = await decodeLogits(model, ids, () => false);
      const mixed = await decodeLogits(model, ids, (t) => t % 2 === 0);
      assert.equal(calls(), spec.layers * 3, 'positions 6, 8 and 10 fused');
      assertSameBits(mixed, byOps, 'alternating');
    });
  });
});

describe('where the fused block does not apply the ops run', { skip }, () => {
  const [, spec] = VARIANTS[1];
  /** The fused calls of one prefill and one decode step of `rows` rows under `wrap`. */
  async function callsOf(model: CausalLm, rows: number, wrap: <T>(fn: () => T) => T = noGrad): Promise<number> {
    return countingFused(async (calls) => {
      const cache = new KvCache(Array.from({ length: rows }, () => new SequenceCache()));
      wrap(() => model.forward(Tensor.from(Array.from({ length: rows * 3 }, (_, i) => i + 1), [rows, 3], 'int32'), cache));
      cache.advance(3);
      wrap(() => model.forward(Tensor.from(Array.from({ length: rows }, (_, i) => i + 9), [rows, 1], 'int32'), cache));
      cache.advance(1);
      return calls();
    });
  }

  test('it applies: one row, quantized or float32 weights, no gradients, a float32 step', async () => {
    assert.equal(await callsOf(quantizedModel(spec, 'q8_0', 2), 1), spec.layers);
    assert.equal(await callsOf(randomModel(spec, 2), 1), spec.layers);
  });

  test('two rows (a batch: each row its own cache and position)', async () => {
    assert.equal(await callsOf(quantizedModel(spec, 'q8_0', 2), 2), 0);
  });

  test('gradients recorded, and a bf16 step whose weights are cast per call (no cast cache)', async () => {
    assert.equal(await callsOf(quantizedModel(spec, 'q8_0', 2), 1, (fn) => fn()), 0);
    assert.equal(await callsOf(randomModel(spec, 2), 1, (fn) => noGrad(() => withComputePrecision('bf16', fn))), 0);
  });

  test('LoRA adapters over a quantized base', async () => {
    const adapted = quantizedModel(spec, 'q8_0', 2);
    applyLora(adapted, { targets: ['q_proj'], rank: 2, alpha: 4, dropout: 0 });
    assert.equal(await callsOf(adapted, 1), 0);
  });

  test('a backend without the call (the js backend)', async () => {
    const before = backendFor({ device: 'cpu', dtype: 'float32' }).name;
    setBackend('js');
    try {
      const model = quantizedModel(spec, 'q8_0', 2);
      const cache = new KvCache();
      await cachedStep(model, [1, 2, 3], cache);
      const logits = await cachedStep(model, [4], cache);
      assert.ok(logits.every(Number.isFinite));
    } finally {
      setBackend(before);
    }
  });
});
