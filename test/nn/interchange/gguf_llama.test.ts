/**
 * A Llama-family model read from a GGUF file (src/nn/interchange/gguf_llama.ts), the file written
 * from a Hugging Face folder by bench/reference/hf_to_gguf.py (gguf-py, llama.cpp's tensor names and
 * its q/k row order for `llama`): F32 files give the folder model's logits bit for bit (llama with
 * its rows permuted; qwen2 with biases and a tied head; qwen3 with q/k norms); a Q8_0 file gives the
 * logits of the folder model quantized at load (--quantize q8_0: the same bytes, gguf-py's
 * quantization being ggml's), read into huge pages (a generator's load) the same bytes as mapped,
 * and llama.cpp's greedy tokens from it equal ours; a Q4_0 file read for a generator (repack) holds its
 * matrices in the layout the native kernels read (q4_0x8), the same values. Architectures and
 * files we cannot read are refused by name.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generate, type CausalLm } from '../../../src/generate/generate.js';
import { readGgufHeader } from '../../../src/nn/interchange/gguf.js';
import { loadGgufModel, parameterNameOf, specFromGguf } from '../../../src/nn/interchange/gguf_llama.js';
import { exportGguf } from '../../../src/nn/interchange/gguf_export.js';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel, defaultSpec } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { quantizeModel } from '../../../src/nn/quantize_model.js';
import { noGrad } from '../../../src/tensor/autograd.js';
import { dequantize } from '../../../src/tensor/ops/quant.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { llamaCppGeneration, loadNodeLlamaCpp } from '../../../bench/lib/generate_llama_cpp.js';
import { findPython } from '../../helpers/python.js';
import { repacksRows8 } from '../../helpers/rows8.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../bench/reference/hf_to_gguf.py');
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, '/opt/torchvenv/bin/python'], ['gguf', 'safetensors', 'numpy']);
if (!PYTHON && process.env.CI === 'true') throw new Error('gguf_llama: no python with gguf (CI builds /opt/torchvenv with it)');
const llamaCpp = await loadNodeLlamaCpp();
if (typeof llamaCpp === 'string' && process.env.CI === 'true') throw new Error(`gguf_llama: ${llamaCpp}`);

const PROMPT = [5, 17, 42, 99, 3, 250, 7, 64];
const dir = mkdtempSync(join(tmpdir(), 'smol-gguf-llama-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** q and k scaled up so attention is sharp: a wrong row order then changes the logits a lot. */
function sharpened(spec: LlamaSpec, seed: number): Module {
  const model = createModel(spec, seed);
  for (const [name, p] of model.namedParameters()) {
    if (/[qk]_proj\.weight$/.test(name)) (p.values() as Float32Array).forEach((v, i, a) => (a[i] = 25 * v));
  }
  return model;
}

function logits(model: Module): Float32Array {
  return noGrad(() => Float32Array.from((model.forward(Tensor.fromHost(Int32Array.from(PROMPT), [1, PROMPT.length])) as Tensor).values() as Float32Array));
}

function convert(folder: string, out: string, dtype: string): string {
  const r = spawnSync(PYTHON!, [SCRIPT, folder, out, '--dtype', dtype], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

const base = defaultSpec('llama-tiny', [64], 256) as LlamaSpec;
const FAMILY: [string, LlamaSpec][] = [
  ['llama (q/k rows permuted in the file, untied head)', { ...base, tieEmbeddings: false }],
  ['qwen2 (q/k/v biases, tied head)', { ...base, modelType: 'qwen2', qkvBias: true, tieEmbeddings: true }],
  ['qwen3 (q/k norms)', { ...base, modelType: 'qwen3', qkNorm: true, tieEmbeddings: true }],
];

describe('a Llama-family model from a GGUF file', { skip: !PYTHON && 'no python with gguf (SMOLCLUSTER_PYTHON)' }, () => {
  for (const [i, [title, spec]] of FAMILY.entries()) {
    it(`${title}: an F32 file gives the folder model's logits bit for bit`, async () => {
      const model = sharpened(spec, 3 + i);
      const folder = join(dir, spec.modelType);
      saveFolder(folder, model, spec);
      const file = await readGgufHeader(convert(folder, join(dir, `${spec.modelType}-f32.gguf`), 'f32'));
      const { moe: _, ...expected } = spec;
      assert.deepEqual(specFromGguf(file), expected);
      const loaded = loadGgufModel(file);
      assert.deepEqual(logits(loaded.model), logits(model));
    });
  }

  it('a Q8_0 file holds its matrices in their blocks, gives the logits of the folder model quantized at load, and llama.cpp generates what we do', async () => {
    const spec = FAMILY[0][1];
    const model = sharpened(spec, 3);
    const folder = join(dir, 'llama');
    if (!existsSync(join(folder, 'config.json'))) saveFolder(folder, model, spec);
    const path = convert(folder, join(dir, 'llama-q8_0.gguf'), 'q8_0');
    const { model: loaded } = loadGgufModel(await readGgufHeader(path));
    const params = new Map(loaded.namedParameters());
    assert.equal(params.get('model.layers.1.self_attn.q_proj.weight')!.dtype, 'q8_0');
    assert.equal(params.get('model.embed_tokens.weight')!.dtype, 'q8_0');
    assert.equal(params.get('model.norm.weight')!.dtype, 'float32');
    assert.equal(params.get('lm_head.weight')!.requiresGrad, false);
    // A generator's load (hugePages) reads the blocks into one block of memory, q and k rows put back
    // in order in their places: the same bytes as the mapped file's, parameter by parameter.
    const { model: inPages } = loadGgufModel(await readGgufHeader(path), undefined, { hugePages: true });
    for (const [name, p] of inPages.namedParameters()) {
      const mapped = params.get(name)!;
      assert.equal(p.dtype, mapped.dtype, name);
      assert.deepEqual(p.storage.buffer, mapped.storage.buffer, name);
    }
    const blocks = inPages.namedParameters().filter(([, p]) => p.dtype === 'q8_0').map(([, p]) => p.storage.buffer as unknown as Uint8Array);
    assert.ok(blocks.every((b) => b.buffer === blocks[0].buffer && b.byteOffset % 64 === 0), 'one block, each place on a 64-byte line');
    quantizeModel(model, spec, 'q8_0');
    assert.deepEqual(logits(loaded), logits(model));
    if (typeof llamaCpp === 'string') return;
    const ours = await generate(loaded as unknown as CausalLm, PROMPT, { maxNewTokens: 12 });
    const { runs } = await llamaCppGeneration(path, [PROMPT], [1], 12);
    assert.deepEqual(runs[0].firstIds, ours.ids, `llama.cpp ${runs[0].firstIds} against ours ${ours.ids}`);
  });

  it('a Q4_0 file read for a generator (repack): its matrices held as q4_0x8 where the native 512-bit kernels read that layout, else as read; their values the file\'s bit for bit, the logits the file layout\'s up to float32 rounding', async () => {
    const spec = FAMILY[1][1];
    const folder = join(dir, 'qwen2-q4');
    saveFolder(folder, sharpened(spec, 5), spec);
    const path = convert(folder, join(dir, 'qwen2-q4_0.gguf'), 'q4_0');
    const { model: asRead } = loadGgufModel(await readGgufHeader(path), undefined, { hugePages: true });
    const { model: repacked } = loadGgufModel(await readGgufHeader(path), undefined, { hugePages: true, repack: true });
    const rows8 = repacksRows8();
    const read = new Map(asRead.namedParameters());
    for (const [name, p] of repacked.namedParameters()) {
      const was = read.get(name)!;
      assert.equal(p.dtype, was.dtype === 'q4_0' && rows8 ? 'q4_0x8' : was.dtype, name);
      if (was.dtype === 'q4_0') assert.deepEqual(dequantize(p).values(), dequantize(was).values(), name);
    }
    assert.ok(repacked.namedParameters().some(([, p]) => p.dtype === (rows8 ? 'q4_0x8' : 'q4_0')), 'the file\'s matrices are Q4_0');
    const [a, b] = [logits(asRead), logits(repacked)];
    const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale, `logit ${i}: ${b[i]} repacked, ${a[i]} as read (largest ${scale})`);
  });

  it('an F16 file: a generator\'s load (hugePages) keeps its matrices float16 (f16 blocks, 2 bytes a weight, q/k rows in order); the logits those of the widened load within 1e-5', async () => {
    const spec = FAMILY[0][1];
    const folder = join(dir, 'llama');
    if (!existsSync(join(folder, 'config.json'))) saveFolder(folder, sharpened(spec, 3), spec);
    const file = await readGgufHeader(convert(folder, join(dir, 'llama-f16.gguf'), 'f16'));
    const widened = loadGgufModel(file).model;
    assert.ok(widened.namedParameters().every(([, p]) => p.dtype === 'float32'));
    const held = loadGgufModel(file, undefined, { hugePages: true }).model;
    for (const [name, p] of held.namedParameters()) {
      assert.equal(p.dtype, p.ndim === 2 ? 'f16' : 'float32', name);
      if (p.ndim === 2) assert.equal((p.storage.buffer as unknown as Uint8Array).byteLength, 2 * p.size, name);
    }
    const [a, b] = [logits(held), logits(widened)];
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst <= 1e-5, `worst ${worst}`);
  });

  it('Llama 3\'s rotary scaling, written as rope_freqs.weight: read back as its parameters; llama.cpp generates what we do', async () => {
    const spec: LlamaSpec = { ...FAMILY[0][1], ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } };
    const model = sharpened(spec, 9);
    const path = join(dir, 'llama3-scaled.gguf');
    const tokenizer = join(dir, 'llama3-tokenizer.json');
    writeFileSync(tokenizer, JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`t${i}`, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
    await exportGguf(path, model, spec, { tokenizer: { json: tokenizer } });
    const file = await readGgufHeader(path);
    assert.deepEqual(specFromGguf(file).ropeScaling, spec.ropeScaling);
    const loaded = loadGgufModel(file).model;
    assert.deepEqual(logits(loaded), logits(model));
    if (typeof llamaCpp === 'string') return;
    const ours = await generate(loaded as unknown as CausalLm, PROMPT, { maxNewTokens: 12 });
    const { runs } = await llamaCppGeneration(path, [PROMPT], [1], 12);
    assert.deepEqual(runs[0].firstIds, ours.ids, `llama.cpp ${runs[0].firstIds} against ours ${ours.ids}`);
  });

  it('names each of llama.cpp\'s tensors as Hugging Face does, and refuses what it cannot place', async () => {
    assert.equal(parameterNameOf('blk.3.attn_v.bias'), 'model.layers.3.self_attn.v_proj.bias');
    assert.equal(parameterNameOf('blk.0.ffn_down.weight'), 'model.layers.0.mlp.down_proj.weight');
    assert.equal(parameterNameOf('output_norm.weight'), 'model.norm.weight');
    assert.equal(parameterNameOf('blk.0.ffn_gate_exps.weight'), null);
    const gpt2 = defaultSpec('gpt2-tiny', [64], 256);
    saveFolder(join(dir, 'gpt2'), createModel(gpt2, 1), gpt2);
    const file = await readGgufHeader(convert(join(dir, 'gpt2'), join(dir, 'gpt2.gguf'), 'f32'));
    assert.throws(() => specFromGguf(file), /gpt2\.gguf: general\.architecture is gpt2; we read llama, qwen2, qwen3 \(the Llama family\)/);
  });
});
