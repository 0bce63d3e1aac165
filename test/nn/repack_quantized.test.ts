/**
 * --quantize's blocks repacked for the cpu's products (src/nn/repack_quantized.ts): a generator's
 * folder read with --quantize q4_0 or q8_0 holds its matrices as q4_0x8 / q8_0x8 where the native
 * kernels read that layout (else as quantized), the tied embedding once, their values those of the
 * row format bit for bit and the logits the row layout's up to float32 rounding; exported, the file
 * is the one the rows give.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { exportGguf } from '../../src/nn/interchange/gguf_export.js';
import { readGgufHeader } from '../../src/nn/interchange/gguf.js';
import { loadGgufModel } from '../../src/nn/interchange/gguf_llama.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { quantizeModel } from '../../src/nn/quantize_model.js';
import { repackQuantizedMatrices } from '../../src/nn/repack_quantized.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { dequantize } from '../../src/tensor/ops/quant.js';
import { ROWS8_OF } from '../../src/tensor/quant/rows8.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { tempDir } from '../helpers/cluster.js';
import { repacksRows8 } from '../helpers/rows8.js';
import { writeByteTokenizer } from '../generate/byte_tokenizer.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'qwen2', vocabSize: 256, context: 64, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: true, qkNorm: false, dropout: 0,
};
const dir = tempDir('repack-quantized');
after(() => rmSync(dir, { recursive: true, force: true }));

function logits(model: Module): Float32Array {
  const ids = Tensor.fromHost(Int32Array.from({ length: 5 }, (_, i) => (i * 37 + 11) % 256), [1, 5]);
  return noGrad(() => Float32Array.from(model.forward(ids).values() as Float32Array));
}

describe('--quantize\'s blocks repacked for the cpu\'s products', () => {
  const folder = join(dir, 'qwen2');
  saveFolder(folder, createModel(SPEC, 7), SPEC);

  for (const scheme of ['q4_0', 'q8_0'] as const) {
    it(`a folder read with --quantize ${scheme} holds ${scheme}x8 where this CPU's kernels read it, the values and logits of ${scheme}'s rows`, async () => {
      const g = await loadGenerator(folder, { quantize: scheme, tokenizer: 'bytes' });
      const rows = createModel(SPEC, 7);
      quantizeModel(rows, SPEC, scheme);
      const held = new Map(g.model.namedParameters());
      let repacked = 0;
      for (const [name, p] of rows.namedParameters()) {
        const q = held.get(name)!;
        if (p.dtype !== scheme) continue;
        assert.equal(q.dtype, repacksRows8() ? `${scheme}x8` : scheme, name);
        assert.deepEqual(dequantize(q).values(), dequantize(p).values(), name);
        repacked++;
      }
      assert.ok(repacked >= 2 * 7, `${repacked} matrices: every layer's seven`);
      const [a, b] = [logits(rows), logits(g.model as unknown as Module)];
      const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale, `logit ${i}: ${b[i]} repacked, ${a[i]} in rows`);
    });
  }

  it('a model holding interleaved matrices exports a GGUF file of their row formats, the bytes of the model before it was repacked', async () => {
    const rows = createModel(SPEC, 7);
    quantizeModel(rows, SPEC, 'q4_k_m');
    const repacked = createModel(SPEC, 7);
    quantizeModel(repacked, SPEC, 'q4_k_m');
    repackQuantizedMatrices(repacked);
    const tokenizer = { json: writeByteTokenizer(dir) };
    const [a, b] = [join(dir, 'rows.gguf'), join(dir, 'repacked.gguf')];
    await exportGguf(a, rows, SPEC, { tokenizer });
    await exportGguf(b, repacked, SPEC, { tokenizer });
    assert.ok(readFileSync(b).equals(readFileSync(a)), 'the same file');
    const read = new Map(loadGgufModel(await readGgufHeader(b)).model.namedParameters());
    for (const [name, p] of rows.namedParameters()) assert.equal(read.get(name)!.dtype, p.dtype, name);
  });

  it('repacks a matrix two places share once, q4_k_m\'s Q5_0 and Q8_0 matrices too, and leaves float ones and the K-quants as they are', () => {
    const model = createModel(SPEC, 7);
    quantizeModel(model, SPEC, 'q4_k_m');
    const before = new Map(model.namedParameters().map(([n, p]) => [n, p.dtype]));
    repackQuantizedMatrices(model);
    for (const [name, p] of model.namedParameters()) {
      const was = before.get(name)!;
      const interleaved = Object.entries(ROWS8_OF).find(([, row]) => row === was)?.[0];
      assert.equal(p.dtype, repacksRows8() && interleaved ? interleaved : was, name);
    }
    const twice = createModel(SPEC, 7);
    quantizeModel(twice, SPEC, 'q8_0');
    const values = dequantize(twice.namedParameters().find(([n]) => n === 'model.embed_tokens.weight')![1]).values();
    repackQuantizedMatrices(twice);
    repackQuantizedMatrices(twice);
    assert.deepEqual(dequantize(twice.namedParameters().find(([n]) => n === 'model.embed_tokens.weight')![1]).values(), values, 'the tied embedding, repacked once');
  });
});
