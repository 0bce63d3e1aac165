/**
 * A GGUF file's quantized blocks bound as views of the file mapped read-only (file_map.ts,
 * src/native/file_map.cc): the mapping holds the file's bytes; a model loaded from the file holds
 * its quantized weights there, not in its own heap (the process's anonymous memory grows by less
 * than a fifth of them while its file-backed memory holds them). That the logits are the file's is
 * what gguf_llama.test.ts and generate/gguf_faithful.test.ts check, through the same loader.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exportGguf } from '../../../src/nn/interchange/gguf_export.js';
import { readGgufHeader } from '../../../src/nn/interchange/gguf.js';
import { loadGgufModel } from '../../../src/nn/interchange/gguf_llama.js';
import { mapFileReadOnly } from '../../../src/nn/interchange/file_map.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { isQuantType } from '../../../src/tensor/quant/formats.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { tempDir } from '../../helpers/cluster.js';

const LINUX_NATIVE = process.platform === 'linux' && process.env.SMOLCLUSTER_BACKEND !== 'js';
const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'qwen2', vocabSize: 8192, context: 64, layers: 4, width: 512, intermediate: 1536, heads: 8, kvHeads: 2, headDim: 64,
  ropeTheta: 1e6, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('file-map');
after(() => rmSync(dir, { recursive: true, force: true }));

/** This process's resident memory of one kind (RssAnon: its heap; RssFile: mapped files' pages), bytes. */
function rss(kind: 'RssAnon' | 'RssFile'): number {
  const m = new RegExp(`^${kind}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

describe('a GGUF file mapped read-only', { skip: LINUX_NATIVE ? false : 'needs Linux and the native addon' }, () => {
  it('maps a file\'s bytes', () => {
    const file = join(dir, 'bytes.bin');
    const bytes = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31) & 255);
    writeFileSync(file, bytes);
    const mapped = mapFileReadOnly(file, 0, bytes.length);
    assert.ok(mapped, 'the native addon maps files on Linux');
    assert.deepEqual(mapped, bytes);
    // A range that starts inside a page (a tensor's offset): the view is its bytes, the mapping its pages.
    const range = mapFileReadOnly(file, 5001, 3000)!;
    assert.deepEqual(range, bytes.subarray(5001, 8001));
    assert.ok(range.buffer.byteLength < bytes.length && range.byteOffset === range.buffer.byteLength - 3000);
    assert.throws(() => mapFileReadOnly(file, 9000, 2000), /bytes 9000\.\.11000 run past the file's end \(10000 bytes\)/);
  });

  it('holds a loaded model\'s quantized weights in the mapping, not the process\'s heap', async () => {
    const file = join(dir, 'q8_0.gguf');
    await exportGguf(file, createModel(SPEC, 2), SPEC, { quantize: 'q8_0', tokenizer: { gguf: {} } });
    const header = await readGgufHeader(file);
    const quantizedBytes = [...header.tensors.values()].filter((t) => isQuantType(t.type)).reduce((n, t) => n + t.bytes, 0);
    const [anon, fileBacked] = [rss('RssAnon'), rss('RssFile')];
    const { model } = loadGgufModel(header);
    const ids = Tensor.fromHost(Int32Array.from({ length: 48 }, (_, i) => (i * 97) % SPEC.vocabSize), [1, 48]);
    const logits = noGrad(() => Float32Array.from(model.forward(ids).values() as Float32Array));
    const grewAnon = rss('RssAnon') - anon;
    const grewFile = rss('RssFile') - fileBacked;
    assert.ok(grewFile > 0.5 * quantizedBytes, `file-backed memory grew ${grewFile} bytes for ${quantizedBytes} of blocks`);
    assert.ok(grewAnon < 0.2 * quantizedBytes + 16 * 2 ** 20, `the heap grew ${grewAnon} bytes for ${quantizedBytes} of blocks`);
    const embed = model.namedParameters().find(([n]) => n === 'model.embed_tokens.weight')![1];
    const held = embed.values() as Uint8Array;
    assert.ok(held.buffer.byteLength >= held.byteLength && held.buffer.byteLength < held.byteLength + 65536, 'the blocks are a view of their own pages of the file');
    assert.ok(logits.every(Number.isFinite));
  });
});
