/**
 * `generate`/`serve --model FILE.gguf --adapter DIR` (or an MLX quantized folder): the PEFT adapter
 * runs unmerged over the quantized matrices (merged into 4-bit blocks, a fine-tune's small change
 * would be rounded away; merging into blocks is refused by module).
 * Its logits equal those of the adapter merged into the file's dequantized float32 weights, within
 * float32 rounding, over a prompt long enough for the exact product (tiles + GEMM).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { exportGguf } from '../../src/nn/interchange/gguf_export.js';
import { readGgufHeader } from '../../src/nn/interchange/gguf.js';
import { loadGgufModel } from '../../src/nn/interchange/gguf_llama.js';
import { loadMlxFolder } from '../../src/nn/interchange/mlx_folder.js';
import { applyLora, mergeAdapterInto, saveAdapter } from '../../src/nn/lora/index.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { dequantize, exactQuantProducts } from '../../src/tensor/ops/quant.js';
import { isQuantType } from '../../src/tensor/quant/formats.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { tempDir } from '../helpers/cluster.js';
import { writeMlxFolder } from '../helpers/mlx_folder.js';
import { repacksRows8 } from '../helpers/rows8.js';
import { writeByteTokenizer } from './byte_tokenizer.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 64, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('gguf-adapter');
after(() => rmSync(dir, { recursive: true, force: true }));

/** An adapter on q, v and down, its B moved off zero so it changes the logits. */
async function writeAdapter(path: string): Promise<void> {
  const model = createModel(SPEC, 9);
  applyLora(model, { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], seed: 2 });
  const rng = new Rng(4);
  for (const [n, p] of model.namedTrainable()) if (n.endsWith('lora_B.weight')) p.storage.write(Float32Array.from(p.values() as Float32Array, () => 0.2 * rng.normal()));
  await saveAdapter(path, model, SPEC);
}

function logits(model: Module): Float32Array {
  const ids = Tensor.fromHost(Int32Array.from({ length: 48 }, (_, i) => (i * 37 + 11) % 256), [1, 48]);
  return noGrad(() => Float32Array.from(model.forward(ids).values() as Float32Array));
}

/** The base, written in its quantized form, and the same model as loaded (its quantized matrices in their blocks). */
interface QuantizedBase { path: string; load(): Promise<Module>; format: string }

async function ggufBase(): Promise<QuantizedBase> {
  const path = join(dir, 'tiny-q4_0.gguf');
  await exportGguf(path, createModel(SPEC, 3), SPEC, { quantize: 'q4_0', tokenizer: { json: writeByteTokenizer(dir) } });
  return { path, load: async () => loadGgufModel(await readGgufHeader(path)).model, format: 'q4_0' };
}

function mlxBase(): QuantizedBase {
  const path = join(dir, 'mlx-4bit');
  writeMlxFolder(path, createModel(SPEC, 3), SPEC, { quantization: { group_size: 64, bits: 4 } });
  return { path, load: async () => loadMlxFolder(path, SPEC, { groupSize: 64, bits: 4 }), format: 'mlx4' };
}

describe('a quantized model with --adapter', () => {
  const adapter = join(dir, 'adapter');
  const written = writeAdapter(adapter);

  for (const [what, base] of [['a GGUF file', ggufBase], ['an MLX 4-bit folder', mlxBase]] as const) {
    it(`${what}: runs the adapter unmerged over the quantized matrices, the logits of it merged into the dequantized weights`, async () => {
      await written;
      const { path, load, format } = await base();
      const g = await loadGenerator(path, { adapter, tokenizer: 'bytes' });
      const params = new Map(g.model.namedParameters());
      // (A generator holds Q4_0 as q4_0x8 where the native kernels read that layout: its blocks still.)
      const held = format === 'q4_0' && repacksRows8() ? 'q4_0x8' : format;
      assert.equal(params.get('model.layers.0.self_attn.q_proj.weight')!.dtype, held, 'the adapted weight stays in its blocks');
      assert.ok(params.has('model.layers.0.self_attn.q_proj.lora_A.weight'));

      const merged = await load();
      await assert.rejects(mergeAdapterInto(adapter, merged), new RegExp(`model\\.layers\\.0\\.self_attn\\.q_proj: its weight is held in ${format} blocks, which an adapter is not merged into`));
      for (const [, p] of merged.namedParameters()) if (isQuantType(p.dtype)) p.holdFrozen(dequantize(p).storage);
      await mergeAdapterInto(adapter, merged);
      // Exact products: the 48 rows would otherwise multiply x quantized to int8 (the integer tiles), an
      // error of its own beside what this pins: the unmerged adapter equals the merged one.
      const [got, want] = [exactQuantProducts(() => logits(g.model as unknown as Module)), logits(merged)];
      const plain = logits((await loadGenerator(path, { tokenizer: 'bytes' })).model as unknown as Module);
      const largest = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const apart = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
      assert.ok(apart(got, want) <= 1e-5 * largest, `${apart(got, want)} apart (largest logit ${largest})`);
      assert.ok(apart(plain, want) > 1e-3 * largest, 'the adapter changes the logits');
    });
  }
});
