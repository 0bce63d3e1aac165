/**
 * A BF16 folder loaded for bf16 generation holds its matrices in bfloat16 (src/nn/interchange/inference_folder.ts):
 * the storages' dtype and bytes, no float32 copy, and the same logits as the path it replaces
 * (float32 weights widened from the file, each cast back to bf16 once: the same bf16 operands).
 * For fp32 generation a BF16 or F16 folder's matrices stay 16-bit (bfloat16, f16 blocks) and the
 * products widen them: the widened model's logits.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cachedStep } from '../../../src/generate/generate.js';
import type { CausalLm } from '../../../src/generate/generate.js';
import { KvCache } from '../../../src/generate/kv_cache.js';
import { loadGenerator } from '../../../src/generate/load_generator.js';
import { holdBf16Casts } from '../../../src/generate/model_casts.js';
import { loadFolderForInference } from '../../../src/nn/interchange/inference_folder.js';
import { loadPretrained, saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { quantizeModel } from '../../../src/nn/quantize_model.js';
import { loadSafetensorsModel, saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { type LlamaSpec, createModel, defaultSpec, gpt2Spec } from '../../../src/nn/models/index.js';
import { heldByGenerator } from '../../helpers/rows8.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-bf16-folder-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// Qwen-like: q, k, v biases (float32 vectors beside bf16 matrices), a tied head (the embedding read by a bf16 product).
const spec: LlamaSpec = { ...(defaultSpec('llama-tiny', [64], 256) as LlamaSpec), modelType: 'qwen2', qkvBias: true, tieEmbeddings: true };
const bf16 = join(dir, 'bf16');
const fp32 = join(dir, 'fp32');
const f16 = join(dir, 'f16');
const source = createModel(spec, 7);
saveFolder(bf16, source, spec, { dtype: 'bf16' });
saveFolder(fp32, source, spec);
saveFolder(f16, source, spec, { dtype: 'f16' });
// More rows than THIN_ROWS (8): the prefill runs the full bf16 product (the widened model's cast on its packed copy, packed_weights.ts).
const PROMPT = [3, 17, 42, 99, 5, 200, 31, 64, 128, 77, 12, 250, 1, 2, 3, 4];

/** The prompt's next-token logits, then three decode steps', in `precision`. */
async function logits(model: CausalLm, precision: 'bf16' | 'fp32' = 'bf16'): Promise<Float32Array[]> {
  const cache = new KvCache();
  const casts = precision === 'bf16' ? holdBf16Casts(model) : null;
  const out = [await cachedStep(model, PROMPT, cache, precision, casts)];
  for (const id of [8, 9, 10]) out.push(await cachedStep(model, [id], cache, precision, casts));
  return out;
}

/** Every step's logits within `bound` of the other model's (the same float32 products summed in another order). */
function assertStepsWithin(a: Float32Array[], b: Float32Array[], bound: number, what: string): void {
  for (let s = 0; s < a.length; s++) {
    let worst = 0;
    for (let i = 0; i < a[s].length; i++) worst = Math.max(worst, Math.abs(a[s][i] - b[s][i]));
    assert.ok(worst <= bound, `${what} step ${s}: ${worst}`);
  }
}

describe('a float folder held in bf16', () => {
  it('its matrices are bfloat16 storages of 2 bytes a weight; vectors float32; nothing else held', () => {
    for (const folder of [bf16, fp32]) {
    const { model } = loadFolderForInference(folder, { matrices: 'bf16' });
    const params = model.namedParameters();
    assert.ok(params.length > 0);
    for (const [name, p] of params) {
      const bytes = p.storage.size * (p.dtype === 'bfloat16' ? 2 : 4);
      if (p.ndim === 2) {
        assert.equal(p.dtype, 'bfloat16', name);
        assert.equal(bytes, 2 * p.size, name);
      } else {
        assert.equal(p.dtype, 'float32', name);
      }
    }
    const matrices = params.filter(([, p]) => p.ndim === 2).reduce((n, [, p]) => n + p.size, 0);
    const total = params.reduce((n, [, p]) => n + p.size, 0);
    // The embedding is tied: one storage for the table and the head.
    assert.ok(matrices / total > 0.9);
    }
  });

  it('loadGenerator --precision bf16 takes it; an F32 folder in fp32 stays float32', async () => {
    const g = await loadGenerator(bf16, { precision: 'bf16', tokenizer: 'bytes' });
    assert.ok(g.model.namedParameters().some(([, p]) => p.dtype === 'bfloat16'));
    assert.equal(g.memory?.need.formats, 'bfloat16 + float32');
    const f = await loadGenerator(fp32, { precision: 'fp32', tokenizer: 'bytes' });
    assert.ok(f.model.namedParameters().every(([, p]) => p.dtype === 'float32'));
    const rounded = await loadGenerator(fp32, { precision: 'bf16', tokenizer: 'bytes' });
    assert.ok(rounded.model.namedParameters().every(([, p]) => p.dtype === (p.ndim === 2 ? 'bfloat16' : 'float32')));
    assert.equal(rounded.memory?.need.formats, 'bfloat16 + float32');
  });

  it('without bf16 (an F32 folder, or fp32 generation): every weight float32, the logits those of loadPretrained bit for bit', async () => {
    for (const folder of [fp32, bf16]) {
      const { model } = loadFolderForInference(folder, { matrices: 'float32' });
      assert.ok(model.namedParameters().every(([, p]) => p.dtype === 'float32' && p.requiresGrad));
      const widened = (await loadPretrained(folder)).model as unknown as CausalLm;
      widened.eval();
      const [a, b] = [await logits(model as unknown as CausalLm, 'fp32'), await logits(widened, 'fp32')];
      for (let s = 0; s < a.length; s++) assert.deepEqual(a[s], b[s], `${folder} step ${s}`);
    }
  });

  it('the logits equal, bit for bit, those of the float32-widened model with held bf16 casts', async () => {
    const held = loadFolderForInference(bf16, { matrices: 'bf16' }).model as unknown as CausalLm;
    const widened = (await loadPretrained(bf16)).model as unknown as CausalLm;
    widened.eval();
    const [a, b] = [await logits(held), await logits(widened)];
    for (let s = 0; s < a.length; s++) assert.deepEqual(a[s], b[s], `step ${s}`);
  });

  it('an F32 folder in bf16 rounds its matrices at load (to nearest even): the logits of the BF16 folder saved from the same weights, bit for bit', async () => {
    const rounded = loadFolderForInference(fp32, { matrices: 'bf16' }).model as unknown as CausalLm;
    const held = loadFolderForInference(bf16, { matrices: 'bf16' }).model as unknown as CausalLm;
    const [a, b] = [await logits(rounded), await logits(held)];
    for (let s = 0; s < a.length; s++) assert.deepEqual(a[s], b[s], `step ${s}`);
  });

  it('fp32 generation of a BF16 folder keeps its matrices bfloat16 (as read) and an F32 folder\'s float32; the logits are the widened model\'s', async () => {
    const held = loadFolderForInference(bf16, { matrices: 'as-read' }).model;
    assert.ok(held.namedParameters().every(([, p]) => p.dtype === (p.ndim === 2 ? 'bfloat16' : 'float32')));
    assert.ok(loadFolderForInference(fp32, { matrices: 'as-read' }).model.namedParameters().every(([, p]) => p.dtype === 'float32'));
    const widened = loadFolderForInference(bf16, { matrices: 'float32' }).model;
    const [a, b] = [await logits(held as unknown as CausalLm, 'fp32'), await logits(widened as unknown as CausalLm, 'fp32')];
    assertStepsWithin(a, b, 1e-5, 'as read');
    const g = await loadGenerator(bf16, { precision: 'fp32', tokenizer: 'bytes' });
    assert.ok(g.model.namedParameters().some(([, p]) => p.dtype === 'bfloat16'), 'loadGenerator keeps them so');
    assert.equal(g.memory?.need.formats, 'bfloat16 + float32');
  });

  it('fp32 generation of an F16 folder holds its matrices as f16 blocks, 2 bytes a weight (the file\'s bytes); the logits are the widened model\'s', async () => {
    const held = loadFolderForInference(f16, { matrices: 'as-read' }).model;
    for (const [name, p] of held.namedParameters()) {
      assert.equal(p.dtype, p.ndim === 2 ? 'f16' : 'float32', name);
      if (p.ndim === 2) assert.equal((p.storage.buffer as unknown as Uint8Array).byteLength, 2 * p.size, name);
    }
    const widened = loadFolderForInference(f16, { matrices: 'float32' }).model;
    const [a, b] = [await logits(held as unknown as CausalLm, 'fp32'), await logits(widened as unknown as CausalLm, 'fp32')];
    assertStepsWithin(a, b, 1e-5, 'as read');
    const g = await loadGenerator(f16, { precision: 'fp32', tokenizer: 'bytes' });
    assert.ok(g.model.namedParameters().some(([, p]) => p.dtype === 'f16'), 'loadGenerator keeps them so');
    assert.equal(g.memory?.need.formats, 'float16 + float32');
    // bf16 generation rounds them to bfloat16 at load, as an F32 folder's.
    const rounded = await loadGenerator(f16, { precision: 'bf16', tokenizer: 'bytes' });
    assert.ok(rounded.model.namedParameters().every(([, p]) => p.dtype === (p.ndim === 2 ? 'bfloat16' : 'float32')));
  });

  it('--quantize in place: each matrix made into its blocks as it is read, the blocks those of the float32 model quantized whole; no float32 matrix held', async () => {
    for (const [folder, scheme] of [[fp32, 'q4_k_m'], [bf16, 'q8_0'], [f16, 'q4_0']] as const) {
      const loaded = loadFolderForInference(folder, { matrices: 'float32', quantize: scheme });
      const whole = (await loadPretrained(folder)).model;
      const report = quantizeModel(whole, spec, scheme);
      assert.deepEqual(loaded.quantized, { bytesBefore: report.bytesBefore, bytesAfter: report.bytesAfter }, `${folder} ${scheme}`);
      const theirs = new Map(whole.namedParameters());
      for (const [name, p] of loaded.model.namedParameters()) {
        const q = theirs.get(name)!;
        assert.equal(p.dtype, q.dtype, `${scheme} ${name}`);
        assert.deepEqual(p.storage.buffer, q.storage.buffer, `${scheme} ${name}: the same ${p.dtype} values`);
      }
      assert.ok(loaded.model.namedParameters().some(([, p]) => p.dtype !== 'float32'));
    }
    const g = await loadGenerator(bf16, { quantize: 'q8_0', tokenizer: 'bytes' });
    assert.equal(g.quantized?.scheme, 'q8_0');
    // (Held as q8_0x8 where this CPU's kernels read that layout: test/helpers/rows8.ts.)
    assert.ok(g.model.namedParameters().every(([, p]) => p.dtype === (p.ndim === 2 ? heldByGenerator('q8_0') : 'float32')));
    assert.match(g.memory?.need.formats ?? '', /q8_0/);
  });

  it('a GPT-2 folder loads in place too (its Conv1D matrices read transposed): F32 the logits of loadPretrained bit for bit; BF16 in fp32 its untransposed matrices kept bfloat16', async () => {
    const g2 = gpt2Spec('gpt2-tiny', 256, 64);
    const model = createModel(g2, 5);
    const [f32, b16] = [join(dir, 'gpt2-fp32'), join(dir, 'gpt2-bf16')];
    saveFolder(f32, model, g2);
    saveFolder(b16, model, g2, { dtype: 'bf16' });
    const inPlace = loadFolderForInference(f32, { matrices: 'as-read' }).model;
    assert.ok(inPlace.namedParameters().every(([, p]) => p.dtype === 'float32'));
    const widened = (await loadPretrained(f32)).model as unknown as CausalLm;
    widened.eval();
    const [a, b] = [await logits(inPlace as unknown as CausalLm, 'fp32'), await logits(widened, 'fp32')];
    for (let s = 0; s < a.length; s++) assert.deepEqual(a[s], b[s], `step ${s}`);
    const held = loadFolderForInference(b16, { matrices: 'as-read' }).model;
    assert.ok(held.namedParameters().some(([, p]) => p.dtype === 'bfloat16'));
    const fromBf16 = (await loadPretrained(b16)).model as unknown as CausalLm;
    fromBf16.eval();
    const [c, d] = [await logits(held as unknown as CausalLm, 'fp32'), await logits(fromBf16, 'fp32')];
    assertStepsWithin(c, d, 1e-5, 'bf16 folder');
    // bf16 generation: every matrix bfloat16 (the transposed ones rounded as read), the logits those of the widened model with held casts.
    const inBf16 = loadFolderForInference(b16, { matrices: 'bf16' }).model as unknown as CausalLm;
    assert.ok((inBf16 as unknown as typeof held).namedParameters().every(([, p]) => p.dtype === (p.ndim === 2 ? 'bfloat16' : 'float32')));
    const [e, f] = [await logits(inBf16), await logits(fromBf16)];
    for (let s = 0; s < e.length; s++) assert.deepEqual(e[s], f[s], `bf16 generation step ${s}`);
    const g = await loadGenerator(f32, { precision: 'fp32', tokenizer: 'bytes' });
    assert.equal(g.memory?.need.loading, g.memory?.need.weights! + 16 * 2 ** 20 + g.memory?.need.runtime!, 'in place: the weights and one 16 MB range while loading');
    assert.throws(() => loadFolderForInference(f32, { matrices: 'float32', quantize: 'q8_0' }), /--quantize takes the Llama family/);
  });

  it('a safetensors file smolcluster saved loads in place as a folder does: its BF16 matrices kept, the logits those of loadSafetensorsModel', async () => {
    for (const dtype of ['fp32', 'bf16'] as const) {
      const file = join(dir, `model-${dtype}.safetensors`);
      saveSafetensors(file, source, spec, {}, dtype);
      const g = await loadGenerator(file, { precision: 'fp32', tokenizer: 'bytes' });
      assert.ok(g.model.namedParameters().every(([, p]) => p.dtype === (dtype === 'bf16' && p.ndim === 2 ? 'bfloat16' : 'float32')), dtype);
      assert.equal(g.memory?.need.loading, g.memory?.need.weights! + 16 * 2 ** 20 + g.memory?.need.runtime!, `${dtype}: in place`);
      const whole = loadSafetensorsModel(file).model as unknown as CausalLm;
      whole.eval();
      const [a, b] = [await logits(g.model, 'fp32'), await logits(whole, 'fp32')];
      assertStepsWithin(a, b, dtype === 'fp32' ? 0 : 1e-5, dtype);
    }
  });
});
