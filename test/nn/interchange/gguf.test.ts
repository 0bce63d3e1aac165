/**
 * GGUF files (src/nn/interchange/gguf.ts) as gguf-py's GGUFWriter — what llama.cpp's converters
 * use — writes them: the header's metadata and tensor infos (shapes outermost first), every type
 * we read, and its values: F32, F16 and BF16 widened exactly, a quantized tensor kept as its blocks,
 * which dequantize to gguf-py's values bit for bit. A type we do not read, and a truncated file, are
 * refused by name. Needs the torch venv's python with `gguf`; skipped without it, except under CI=true.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readGgufHeader, readGgufTensor, ggufMeta, type GgufFile } from '../../../src/nn/interchange/gguf.js';
import { type QuantType, dequantizeRows, quantBytes, quantizeRows } from '../../../src/tensor/quant/formats.js';
import { Rng } from '../../../src/util/rng.js';
import { findPython } from '../../helpers/python.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/nn/interchange/gguf_write.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['gguf', 'numpy']);
if (!PYTHON && process.env.CI === 'true') throw new Error('gguf: no python with gguf (CI builds /opt/torchvenv with it)');

const [ROWS, COLS] = [8, 512];
const QUANT: Record<string, QuantType> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_1: 'q4_1', Q5_0: 'q5_0', Q5_1: 'q5_1', Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k' };
const dir = mkdtempSync(join(tmpdir(), 'smol-gguf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const floats = (file: string): Float32Array => {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

function sameBits(ours: Float32Array, theirs: Float32Array, what: string): void {
  assert.equal(ours.length, theirs.length, `${what}: length`);
  const [a, b] = [new Uint32Array(ours.buffer, ours.byteOffset, ours.length), new Uint32Array(theirs.buffer, theirs.byteOffset, theirs.length)];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: value ${i} is ${ours[i]}, gguf-py's ${theirs[i]}`);
}

describe('GGUF files as gguf-py writes them', { skip: !PYTHON && 'no python with gguf (SMOLCLUSTER_PYTHON)' }, () => {
  let file: GgufFile;
  before(async () => {
    const rng = new Rng(5);
    const values = Float32Array.from({ length: ROWS * COLS }, (_, i) => (i % 97 === 0 ? 2 : rng.normal() * 0.05));
    writeFileSync(join(dir, 'values.f32'), values);
    for (const k of ['q4_k', 'q5_k', 'q6_k'] as const) writeFileSync(join(dir, `${k}.ours`), quantizeRows(k, values, COLS));
    const r = spawnSync(PYTHON!, [SCRIPT, dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `gguf_write.py failed: ${r.stderr}`);
    file = await readGgufHeader(join(dir, 'model.gguf'));
  });

  it('reads the metadata, and each tensor\'s shape (outermost first), type and bytes', () => {
    assert.equal(file.architecture, 'qwen2');
    assert.equal(ggufMeta<string>(file, 'general.name'), 'gguf-test');
    assert.equal(ggufMeta<number>(file, 'qwen2.block_count'), 2);
    assert.ok(Math.abs(ggufMeta<number>(file, 'qwen2.attention.layer_norm_rms_epsilon') - 1e-6) < 1e-12);
    assert.deepEqual(ggufMeta<string[]>(file, 'tokenizer.ggml.tokens'), ['<s>', 'hello', 'world']);
    assert.equal(ggufMeta<boolean>(file, 'tokenizer.ggml.add_bos_token'), false);
    assert.equal(ggufMeta(file, 'qwen2.context_length', 4096), 4096, 'an absent key takes the fallback');
    assert.throws(() => ggufMeta(file, 'qwen2.context_length'), /model\.gguf: the metadata has no qwen2\.context_length/);
    assert.deepEqual([...file.tensors.keys()], ['F32', 'F16', 'BF16', ...Object.keys(QUANT).slice(0, 5), 'Q4_K', 'Q5_K', 'Q6_K']);
    for (const t of file.tensors.values()) {
      assert.deepEqual(t.shape, [ROWS, COLS], t.name);
      assert.equal(t.type, QUANT[t.name] ?? t.name);
      const expected = t.name in QUANT ? quantBytes(QUANT[t.name], ROWS, COLS) : ROWS * COLS * (t.name === 'F32' ? 4 : 2);
      assert.equal(t.bytes, expected, t.name);
    }
  });

  it('widens F32, F16 and BF16 exactly, and keeps a quantized tensor in blocks that dequantize to gguf-py\'s values', () => {
    for (const name of ['F32', 'F16', 'BF16']) {
      const v = readGgufTensor(file, name);
      assert.equal(v.type, 'float32');
      if (v.type === 'float32') sameBits(v.values, floats(join(dir, `${name.toLowerCase()}.dequant`)), name);
    }
    for (const [name, type] of Object.entries(QUANT)) {
      const v = readGgufTensor(file, name);
      assert.equal(v.type, type);
      if (!('blocks' in v)) continue;
      assert.equal(v.blocks.length, quantBytes(type, ROWS, COLS));
      const ours = new Float32Array(ROWS * COLS);
      dequantizeRows(type, v.blocks, COLS, 0, ROWS, ours);
      sameBits(ours, floats(join(dir, `${name.toLowerCase()}.dequant`)), name);
    }
    assert.throws(() => readGgufTensor(file, 'output.weight'), /model\.gguf: no tensor named output\.weight/);
  });

  it('refuses a tensor type it does not read, naming the tensor and the type', async () => {
    await assert.rejects(readGgufHeader(join(dir, 'unsupported.gguf')), /unsupported\.gguf: tensor blk\.0\.attn_q\.weight is Q2_K, which we do not read/);
  });

  it('refuses a truncated file, and one that is not GGUF', async () => {
    const cut = join(dir, 'cut.gguf');
    copyFileSync(join(dir, 'model.gguf'), cut);
    truncateSync(cut, statSync(cut).size - 100);
    await assert.rejects(readGgufHeader(cut), /cut\.gguf: tensor Q6_K \(\d+ bytes at \d+\) runs past the file's end \(\d+ bytes\): the file is truncated/);
    writeFileSync(join(dir, 'text.gguf'), 'this is not a model file at all, but long enough to be read as one');
    await assert.rejects(readGgufHeader(join(dir, 'text.gguf')), /text\.gguf: not a GGUF file we can read/);
  });
});
