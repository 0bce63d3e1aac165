/**
 * An MLX quantized folder (src/nn/interchange/mlx_folder.ts) as mlx-lm writes one: config.json's
 * "quantization" and, per quantized layer, U32 codes with BF16 scales and biases. Made here from a
 * float folder's model by MLX's affine quantization (tensor/quant/mlx.ts), split into mlx-lm's three
 * tensors; read back, the blocks are the same bytes, so the logits equal the float folder's
 * quantized at load with --quantize mlx4, bit for bit. Other settings are refused by name.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadGenerator } from '../../../src/generate/load_generator.js';
import { loadPretrained, saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel, defaultSpec } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { writeMlxFolder } from '../../helpers/mlx_folder.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-mlx-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const spec = { ...(defaultSpec('llama-tiny', [64], 256) as LlamaSpec), modelType: 'qwen2', qkvBias: true, tieEmbeddings: true } as LlamaSpec;

function logits(model: Module): Float32Array {
  const ids = Int32Array.from([1, 5, 9, 200, 33, 7]);
  return noGrad(() => Float32Array.from((model.forward(Tensor.fromHost(ids, [1, ids.length])) as Tensor).values() as Float32Array));
}

describe('an MLX quantized folder', () => {
  const model = createModel(spec, 8);
  const floatFolder = join(dir, 'float');
  saveFolder(floatFolder, model, spec);

  it('holds mlx-lm\'s codes, scales and biases as our MLX blocks: the logits of the float folder quantized at load', async () => {
    const folder = join(dir, 'mlx4');
    writeMlxFolder(folder, model, spec, { quantization: { group_size: 64, bits: 4 } });
    const g = await loadGenerator(folder, { tokenizer: 'bytes' });
    const params = new Map((g.model as unknown as Module).namedParameters());
    assert.equal(params.get('model.layers.0.mlp.down_proj.weight')!.dtype, 'mlx4');
    assert.equal(params.get('model.embed_tokens.weight')!.dtype, 'mlx4');
    assert.equal(params.get('model.layers.0.self_attn.q_proj.bias')!.dtype, 'float32');
    const quantizedAtLoad = await loadGenerator(floatFolder, { tokenizer: 'bytes', quantize: 'mlx4' });
    assert.deepEqual(logits(g.model as unknown as Module), logits(quantizedAtLoad.model as unknown as Module));
    await assert.rejects(loadGenerator(folder, { tokenizer: 'bytes', quantize: 'q8_0' }), /is quantized already; --quantize q8_0 takes a float model/);
    await assert.rejects(loadPretrained(folder), /is an MLX quantized folder: generate, chat and serve run it/);
    await assert.rejects(loadGenerator(folder, { tokenizer: 'bytes', device: 'gpu' }), /--device gpu: quantized weights run on the cpu/);
  });

  it('refuses other group sizes, bit widths and per-layer settings by name', async () => {
    for (const [q, message] of [
      [{ group_size: 32, bits: 4 }, /quantization is 4-bit in groups of 32; we read MLX's 4- and 8-bit groups of 64/],
      [{ group_size: 64, bits: 3 }, /quantization is 3-bit in groups of 64/],
      [{ group_size: 64, bits: 4, 'model.layers.0.mlp.down_proj': { group_size: 64, bits: 8 } }, /quantization has per-layer settings \(model\.layers\.0\.mlp\.down_proj\)/],
    ] as const) {
      const folder = join(dir, `bad-${q.group_size}-${q.bits}-${Object.keys(q).length}`);
      writeMlxFolder(folder, model, spec, { quantization: q });
      await assert.rejects(loadGenerator(folder, { tokenizer: 'bytes' }), message);
    }
  });
});
