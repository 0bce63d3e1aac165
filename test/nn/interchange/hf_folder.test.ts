/**
 * Hugging Face folders without Python: saveFolder → loadPretrained gives the same weights (F32
 * exactly, BF16 rounded), sharding by size with an index, ranged reads over shards (ZeRO's --init),
 * the tokenizer files copied, and every malformed folder refused naming the file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TOKENIZER_FILES, isFolderTarget, loadPretrained, saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { parseByteSize, planShards } from '../../../src/nn/interchange/hf_shards.js';
import { readFolderTensors } from '../../../src/nn/interchange/hf_weights.js';
import { initFromFile } from '../../../src/nn/interchange/model_io.js';
import { openInitRanges } from '../../../src/nn/interchange/init_ranges.js';
import { fromBf16Bits, fromF16Bits, toBf16Bits, toF16Bits } from '../../../src/util/float_formats.js';
import { type LlamaSpec, type ModelSpec, createModel } from '../../../src/nn/models/index.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-hf-folder-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LLAMA: LlamaSpec = {
  type: 'llama', modelType: 'qwen2', vocabSize: 40, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: true, qkNorm: false, dropout: 0,
};
const GPT2: ModelSpec = { type: 'gpt2', vocabSize: 30, context: 8, layers: 1, width: 8, heads: 2, dropout: 0 };

const params = (model: ReturnType<typeof createModel>): Map<string, number[]> =>
  new Map(model.namedParameters().map(([n, p]) => [n, Array.from(p.values() as Float32Array)]));

describe('saveFolder → loadPretrained', () => {
  it('one model.safetensors and config.json; the same spec and weights back (qwen2, tied: no lm_head.weight written)', async () => {
    const model = createModel(LLAMA, 1);
    const out = join(dir, 'one');
    assert.deepEqual(saveFolder(out, model, LLAMA).sort(), ['config.json', 'model.safetensors']);
    assert.ok(!readFolderTensors(out).has('lm_head.weight'));
    const back = await loadPretrained(out);
    assert.deepEqual(back.spec, LLAMA);
    assert.deepEqual(params(back.model), params(model));
    assert.equal(back.config.model_type, 'qwen2');
  });

  it('above the shard size: shards in order and an index; loads back the same, also by ranges (ZeRO)', async () => {
    const model = createModel(LLAMA, 2);
    const out = join(dir, 'sharded');
    const files = saveFolder(out, model, LLAMA, { shardBytes: 1500 });
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    assert.ok(shards.length > 2, `${shards.length} shards`);
    assert.ok(!existsSync(join(out, 'model.safetensors')));
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    assert.deepEqual(Object.keys(index.weight_map).sort(), model.namedParameters().map(([n]) => n).sort());
    assert.equal(index.metadata.total_size, 4 * model.numParameters());
    assert.deepEqual(params((await loadPretrained(out)).model), params(model));
    const target = createModel(LLAMA, 3);
    const ranges = openInitRanges(out, target, LLAMA);
    for (const [name, p] of target.namedParameters()) {
      const whole = params(model).get(name)!;
      assert.deepEqual(Array.from(ranges.read(name, p.shape, 1, p.size - 1)), whole.slice(1, p.size - 1), name);
    }
    ranges.close();
    // Saving again unsharded leaves no stale shard behind.
    saveFolder(out, model, LLAMA);
    assert.deepEqual(readdirSync(out).sort(), ['config.json', 'model.safetensors']);
  });

  it('bf16: BF16 tensors, torch_dtype bfloat16, weights rounded to nearest even', async () => {
    const model = createModel(GPT2, 4);
    const out = join(dir, 'bf16');
    saveFolder(out, model, GPT2, { dtype: 'bf16' });
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    assert.ok([...readFolderTensors(out).values()].every((t) => t.dtype === 'BF16'));
    const back = params((await loadPretrained(out)).model);
    for (const [name, v] of params(model)) assert.deepEqual(back.get(name), v.map((x) => fromBf16Bits(toBf16Bits(x))), name);
  });

  it('f16: F16 tensors, torch_dtype float16, weights rounded to nearest even', async () => {
    const model = createModel(LLAMA, 4);
    const out = join(dir, 'f16');
    saveFolder(out, model, LLAMA, { dtype: 'f16', shardBytes: 2000 });
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype, 'float16');
    assert.ok([...readFolderTensors(out).values()].every((t) => t.dtype === 'F16'));
    const back = params((await loadPretrained(out)).model);
    for (const [name, v] of params(model)) assert.deepEqual(back.get(name), v.map((x) => fromF16Bits(toF16Bits(x))), name);
  });

  it('copies the tokenizer files of the --init folder and keeps its token ids', () => {
    const init = join(dir, 'init');
    saveFolder(init, createModel(GPT2, 5), GPT2, { tokens: { bos: 1, eos: [2, 3] } });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) writeFileSync(join(init, f), `{"file": "${f}"}`);
    const out = join(dir, 'copied');
    const files = saveFolder(out, createModel(GPT2, 6), GPT2, { tokenizerFrom: init });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
      assert.ok(files.includes(f) && (TOKENIZER_FILES as readonly string[]).includes(f));
      assert.equal(readFileSync(join(out, f), 'utf8'), `{"file": "${f}"}`);
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual([config.bos_token_id, config.eos_token_id], [1, [2, 3]]);
    // Saving into the --init folder itself copies nothing onto itself.
    saveFolder(init, createModel(GPT2, 7), GPT2, { tokenizerFrom: init });
    assert.equal(readFileSync(join(init, 'tokenizer.json'), 'utf8'), '{"file": "tokenizer.json"}');
  });

  it('initFromFile takes a folder (--init DIR) as well as a file', () => {
    const model = createModel(GPT2, 8);
    saveFolder(join(dir, 'init-dir'), model, GPT2);
    const target = createModel(GPT2, 9);
    initFromFile(join(dir, 'init-dir'), target, GPT2);
    assert.deepEqual(params(target), params(model));
  });
});

describe('malformed folders are refused naming the file', () => {
  const folder = (name: string): string => {
    const d = join(dir, name);
    saveFolder(d, createModel(LLAMA, 10), LLAMA, { shardBytes: 1500 });
    return d;
  };

  it('no config.json, no weights, an architecture we do not build', async () => {
    mkdirSync(join(dir, 'empty'));
    await assert.rejects(loadPretrained(join(dir, 'empty')), /empty\/config\.json: is missing/);
    const noWeights = join(dir, 'no-weights');
    mkdirSync(noWeights);
    writeFileSync(join(noWeights, 'config.json'), JSON.stringify({ model_type: 'gpt2', vocab_size: 30, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 }));
    await assert.rejects(loadPretrained(noWeights), /holds neither model\.safetensors nor model\.safetensors\.index\.json/);
    writeFileSync(join(noWeights, 'config.json'), JSON.stringify({ model_type: 'qwen2_moe', architectures: ['Qwen2MoeForCausalLM'] }));
    await assert.rejects(loadPretrained(noWeights), /model_type "qwen2_moe" \(architectures \["Qwen2MoeForCausalLM"\]\) is not an architecture smolcluster builds/);
  });

  it('an index naming a missing shard, a shard outside the folder, or the wrong shard for a tensor', async () => {
    const d = folder('bad-index');
    const indexFile = join(d, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8'));
    const [first, second] = Object.keys(index.weight_map).filter((n, i, all) => index.weight_map[n] !== index.weight_map[all[0]] || i === 0);
    const write = (map: Record<string, string>): void => writeFileSync(indexFile, JSON.stringify({ weight_map: map }));
    write({ ...index.weight_map, [first]: 'model-00099-of-00099.safetensors' });
    await assert.rejects(loadPretrained(d), /names shard model-00099-of-00099\.safetensors, which is not in/);
    write({ ...index.weight_map, [first]: '../elsewhere.safetensors' });
    await assert.rejects(loadPretrained(d), /not a \.safetensors file name in the same folder/);
    write({ ...index.weight_map, [first]: index.weight_map[second] });
    await assert.rejects(loadPretrained(d), new RegExp(`weight_map places "${first.replace(/\./g, '\\.')}" in`));
  });

  it('config.json and weights of different shapes: the tensor and both shapes named', async () => {
    const d = join(dir, 'mismatch');
    saveFolder(d, createModel(GPT2, 11), GPT2);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'gpt2', vocab_size: 31, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 }));
    await assert.rejects(loadPretrained(d), /tensor "transformer\.wte\.weight" has shape \[30, 8\], the model needs \[31, 8\]/);
  });

  it('a single file of another family says which family it looks like, not "missing N tensors"', () => {
    const single = join(dir, 'llama-one');
    saveFolder(single, createModel(LLAMA, 12), LLAMA);
    assert.throws(() => initFromFile(join(single, 'model.safetensors'), createModel(GPT2, 1), GPT2),
      /holds none of the tensors of a gpt2 model \(it looks like a Llama-family .* checkpoint: model\.layers\.0\.self_attn\..*\); --init a Hugging Face folder/);
  });
});

describe('shard sizes', () => {
  it('parseByteSize reads transformers\' spellings and refuses the rest', () => {
    assert.equal(parseByteSize('5GB'), 5e9);
    assert.equal(parseByteSize('500MB'), 5e8);
    assert.equal(parseByteSize('2KiB'), 2048);
    assert.equal(parseByteSize('1200'), 1200);
    assert.throws(() => parseByteSize('5 parsecs'), /"5 parsecs" is not a size/);
    assert.throws(() => parseByteSize('0'), /not a positive size/);
  });

  it('planShards fills in order and gives a larger tensor its own shard', () => {
    const t = (n: number): { shape: number[]; data: Float32Array } => ({ shape: [n], data: new Float32Array(n) });
    const plan = planShards([['a', t(10)], ['b', t(10)], ['c', t(100)], ['d', t(5)]], 80);
    assert.deepEqual(plan.map((s) => s.map(([n]) => n)), [['a', 'b'], ['c'], ['d']]);
  });

  it('isFolderTarget: names without extension and trailing separators are folders', () => {
    assert.equal(isFolderTarget('out/smollm2-ft'), true);
    assert.equal(isFolderTarget('out/run.v2/'), true);
    assert.equal(isFolderTarget(dir), true);
    assert.equal(isFolderTarget('out/model.safetensors'), false);
    assert.equal(isFolderTarget('out/model.smol'), false);
  });
});
