/**
 * An MLX quantized folder (src/nn/interchange/mlx_folder.ts) as mlx-lm writes one: config.json's
 * "quantization" and, per quantized layer, U32 codes with BF16 scales and biases. Made here from a
 * float folder's model by MLX's affine quantization (tensor/quant/mlx.ts), split into mlx-lm's three
 * tensors; read back, the blocks are the same bytes, so the logits equal the float folder's
 * quantized at load with --quantize mlx4, bit for bit. Other settings are refused by name.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadGenerator } from '../../../src/generate/load_generator.js';
import { loadPretrained, saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel, defaultSpec } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { quantize } from '../../../src/tensor/ops/quant.js';
import { Tensor } from '../../../src/tensor/tensor.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-mlx-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const spec = { ...(defaultSpec('llama-tiny', [64], 256) as LlamaSpec), modelType: 'qwen2', qkvBias: true, tieEmbeddings: true } as LlamaSpec;

/** A safetensors file of raw tensors (dtype, shape, bytes). */
function writeRawSafetensors(file: string, tensors: [string, string, number[], Uint8Array][]): void {
  let offset = 0;
  const header: Record<string, unknown> = {};
  for (const [name, dtype, shape, bytes] of tensors) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([size, Buffer.from(json), ...tensors.map(([, , , b]) => b)]));
}

/** The float model as mlx-lm's `convert -q --q-bits 4` writes it: every matrix whose rows are whole groups of 64. */
function writeMlxFolder(folder: string, model: Module, config: Record<string, unknown>): void {
  saveFolder(folder, model, spec);
  const out: [string, string, number[], Uint8Array][] = [];
  for (const [name, p] of model.namedParameters()) {
    const f32 = p.values() as Float32Array;
    if (p.ndim !== 2 || p.shape[1] % 64 !== 0) {
      out.push([name, 'F32', [...p.shape], new Uint8Array(f32.buffer.slice(f32.byteOffset, f32.byteOffset + f32.byteLength))]);
      continue;
    }
    const [rows, cols] = p.shape;
    const blocks = quantize(p, 'mlx4').values() as Uint8Array;
    const groups = (rows * cols) / 64;
    const [codes, scales, biases] = [new Uint8Array(groups * 32), new Uint8Array(groups * 2), new Uint8Array(groups * 2)];
    for (let g = 0; g < groups; g++) {
      scales.set(blocks.subarray(g * 36, g * 36 + 2), 2 * g);
      biases.set(blocks.subarray(g * 36 + 2, g * 36 + 4), 2 * g);
      codes.set(blocks.subarray(g * 36 + 4, g * 36 + 36), 32 * g);
    }
    const base = name.slice(0, -'weight'.length);
    out.push([name, 'U32', [rows, cols / 8], codes], [`${base}scales`, 'BF16', [rows, cols / 64], scales], [`${base}biases`, 'BF16', [rows, cols / 64], biases]);
  }
  writeRawSafetensors(join(folder, 'model.safetensors'), out);
  const file = join(folder, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...config }));
}

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
    writeMlxFolder(folder, model, { quantization: { group_size: 64, bits: 4 } });
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
      writeMlxFolder(folder, model, { quantization: q });
      await assert.rejects(loadGenerator(folder, { tokenizer: 'bytes' }), message);
    }
  });
});
