/**
 * Generation across pipeline stages over quantized layers (one process here, real TCP on
 * 127.0.0.1 between the stages): a GGUF file holding quantized tensors (a Q8_0 file of the `llama`
 * architecture, its q/k rows permuted, and a Q4_K_M mix of Qwen2 with a tied embedding), and a
 * float safetensors file quantized at load (--quantize q4_0 of a tied Llama; q4_k_m, llama.cpp's
 * per-layer mix, planned over the whole model). Greedy and sampled tokens over 2 and 3 stages equal one process's; each
 * stage holds only its own layers, its quantized ones in the very blocks one process holds. The
 * scheme is part of the stage signature (a stage started by hand is told it, and one with another
 * is refused at connect), --quantize is refused where one process refuses it, and placement counts
 * the bytes the weights will hold: a model that needs three ranks in float32 fits on one or two quantized.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StoreServer } from '../../../src/comm/store/server.js';
import { TOKEN_ENV } from '../../../src/comm/token.js';
import { type CausalLm, generate } from '../../../src/generate/generate.js';
import { type GgufFile, readGgufHeader } from '../../../src/nn/interchange/gguf.js';
import { exportGguf } from '../../../src/nn/interchange/gguf_export.js';
import { loadGgufModel } from '../../../src/nn/interchange/gguf_llama.js';
import { loadMlxFolder } from '../../../src/nn/interchange/mlx_folder.js';
import { saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { modelLayers } from '../../../src/nn/layer_list.js';
import type { LlamaSpec, ModelSpec } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { type QuantScheme, quantizeModel } from '../../../src/nn/quantize_model.js';
import { generateAcross } from '../../../src/serve/stages/pipelined_generate.js';
import { joinStages, stageSignature } from '../../../src/serve/stages/stage_cluster.js';
import { deferredModel } from '../../../src/parallel/pipeline/stage_model.js';
import { placeGeneration } from '../../../src/serve/stages/stage_placement.js';
import { startPipeline } from '../../../src/serve/stages/stage_launch.js';
import { stageSource } from '../../../src/serve/stages/stage_source.js';
import { type StageWeights, heldBytes, heldFormats, layerBytes } from '../../../src/parallel/pipeline/stage_weights.js';
import { runStageWorker } from '../../../src/serve/stages/stage_worker.js';
import { isQuantType } from '../../../src/tensor/quant/formats.js';
import { randomModel } from '../../generate/families.js';
import { freePort } from '../../helpers/cluster.js';
import { writeMlxFolder } from '../../helpers/mlx_folder.js';
import { TOKEN, type TestPipeline, startStages } from './start_stages.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-quant-stages-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const llama = (o: Partial<LlamaSpec>): LlamaSpec => ({
  type: 'llama', modelType: 'llama', vocabSize: 61, context: 64, layers: 3, width: 32, intermediate: 64, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0, ...o,
});
/** Rows of 32: Q8_0 blocks. */
const LLAMA_Q8 = llama({});
/** Rows of 64: MLX groups. */
const MLX_LLAMA = llama({ width: 64, intermediate: 128 });
/** Rows of 256 (K-quant super-blocks), 8 layers: llama.cpp's Q4_K_M gives layers 0, 3, 6 and 7 more bits (useMoreBits). */
const QWEN2_K = llama({ modelType: 'qwen2', qkvBias: true, tieEmbeddings: true, layers: 8, width: 256, intermediate: 256, heads: 4, kvHeads: 2, headDim: 64, ropeTheta: 1e6 });

const PROMPTS = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5, 8, 9, 7]];
const SAMPLED = { maxNewTokens: 5, temperature: 0.9, topK: 20, seed: 7, repetitionPenalty: 1.2 };

/** A byte-level BPE tokenizer.json of `vocab` plain tokens (what exportGguf writes into the file's metadata). */
function tokenizerJson(vocab: number): string {
  const path = join(dir, `tokenizer-${vocab}.json`);
  writeFileSync(path, JSON.stringify({ model: { type: 'BPE', vocab: Object.fromEntries(Array.from({ length: vocab }, (_, i) => [`t${i}`, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel' } }));
  return path;
}

/** `model` written as a GGUF file in `scheme`'s formats (float32 without one), and its header. */
async function ggufOf(name: string, model: Module, spec: LlamaSpec, scheme?: 'q8_0' | 'q4_k_m'): Promise<GgufFile> {
  const path = join(dir, `${name}.gguf`);
  await exportGguf(path, model, spec, { quantize: scheme, tokenizer: { json: tokenizerJson(spec.vocabSize) } });
  return readGgufHeader(path);
}

/** A random model of `spec` saved as a float safetensors file, and the same model as one process quantizes it at load. */
function floatFileAndQuantized(name: string, spec: LlamaSpec, scheme: QuantScheme): { file: string; reference: CausalLm } {
  const file = join(dir, `${name}.safetensors`);
  const reference = randomModel(spec, 33);
  saveSafetensors(file, reference, spec);
  quantizeModel(reference, spec, scheme);
  return { file, reference };
}

/** Greedy and sampled tokens across the stages equal `reference`'s (one process) for every prompt. */
async function assertOneProcessTokens(stages: TestPipeline, reference: CausalLm): Promise<void> {
  const greedy = await generateAcross(stages.driver, PROMPTS, { maxNewTokens: 6 });
  for (const [i, p] of PROMPTS.entries()) assert.deepEqual(greedy[i].ids, (await generate(reference, p, { maxNewTokens: 6 })).ids, `greedy prompt ${i}`);
  const sampled = await generateAcross(stages.driver, PROMPTS.slice(0, 2), SAMPLED);
  for (const [i, p] of PROMPTS.slice(0, 2).entries()) assert.deepEqual(sampled[i].ids, (await generate(reference, p, SAMPLED)).ids, `sampled prompt ${i}`);
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Each stage holds only its own layers (together the whole model's parameters, a tied copy counted
 * twice), every parameter in one process's dtype and bytes: a quantized one in its blocks, frozen.
 * Returns the formats held, by stage.
 */
async function assertHeldAsOneProcess(stages: TestPipeline, reference: Module): Promise<Set<string>[]> {
  const want = new Map(reference.namedParameters());
  const names = stages.joined.map((j) => j.stage.namedParameters().map(([n]) => n));
  for (const stageNames of names) assert.ok(stageNames.length < want.size, 'a stage holds fewer parameters than the model');
  assert.deepEqual(new Set(names.flat()), new Set(want.keys()));
  const formats: Set<string>[] = [];
  for (const j of stages.joined) {
    const held = new Set<string>();
    for (const [name, p] of j.stage.namedParameters()) {
      const w = want.get(name)!;
      assert.equal(p.dtype, w.dtype, `${name}: held as one process holds it`);
      assert.deepEqual(bytesOf(await p.read()), bytesOf(await w.read()), `${name}: one process's bytes`);
      if (isQuantType(p.dtype)) (held.add(p.dtype), assert.equal(p.requiresGrad, false, `${name} is frozen`));
    }
    assert.ok(held.size > 0, `stage ${j.cluster.rank} holds quantized weights`);
    formats.push(held);
  }
  return formats;
}

describe('generation across pipeline stages over quantized layers', { timeout: 180_000 }, () => {
  let q8: GgufFile;
  let q4km: GgufFile;
  // One Qwen2 of K-quant rows: its safetensors file, its Q4_K_M GGUF file, and one process's --quantize q4_k_m of it.
  const qwen2File = join(dir, 'qwen2.safetensors');
  let qwen2Quantized: CausalLm;
  before(async () => {
    q8 = await ggufOf('llama-q8_0', randomModel(LLAMA_Q8, 31), LLAMA_Q8, 'q8_0');
    const qwen2 = randomModel(QWEN2_K, 32);
    saveSafetensors(qwen2File, qwen2, QWEN2_K);
    q4km = await ggufOf('qwen2-q4_k_m', qwen2, QWEN2_K, 'q4_k_m');
    quantizeModel(qwen2, QWEN2_K, 'q4_k_m');
    qwen2Quantized = qwen2;
  });

  for (const P of [2, 3]) {
    it(`a Q8_0 GGUF file of the llama architecture (q/k rows permuted), ${P} stages: one process's tokens, each stage holding its layers' Q8_0 blocks`, async () => {
      const reference = loadGgufModel(q8);
      const stages = await startStages(reference.spec, { gguf: q8 }, P);
      try {
        await assertOneProcessTokens(stages, reference.model as unknown as CausalLm);
        const formats = await assertHeldAsOneProcess(stages, reference.model);
        assert.deepEqual(formats.map((f) => [...f]), new Array(P).fill(['q8_0']));
      } finally {
        await stages.close();
      }
    });

    it(`a Q4_K_M GGUF file of Qwen2 with a tied embedding, ${P} stages: one process's tokens; the head's stage holds the embedding's Q6_K copy`, async () => {
      const reference = loadGgufModel(q4km);
      const stages = await startStages(reference.spec, { gguf: q4km }, P);
      try {
        await assertOneProcessTokens(stages, reference.model as unknown as CausalLm);
        await assertHeldAsOneProcess(stages, reference.model);
        const last = stages.joined[P - 1].stage;
        assert.deepEqual(last.tiedCopies, ['model.embed_tokens.weight'], 'the last stage reads the embedding it does not own');
        assert.equal(new Map(last.namedParameters()).get('model.embed_tokens.weight')!.dtype, 'q6_k');
      } finally {
        await stages.close();
      }
    });

    it(`--quantize q4_0 of a safetensors file of a tied Llama, ${P} stages: one process's tokens and blocks`, async () => {
      const spec = { ...LLAMA_Q8, tieEmbeddings: true };
      const { file, reference } = floatFileAndQuantized(`tied-${P}`, spec, 'q4_0');
      const stages = await startStages(spec, { file, quantize: 'q4_0' }, P);
      try {
        await assertOneProcessTokens(stages, reference);
        await assertHeldAsOneProcess(stages, reference);
        // The tied embedding is the head: Q6_K, which rows of 32 take as llama.cpp's fallback Q8_0, on both of its stages.
        for (const j of [stages.joined[0], stages.joined[P - 1]]) assert.equal(new Map(j.stage.namedParameters()).get('model.embed_tokens.weight')!.dtype, 'q8_0');
      } finally {
        await stages.close();
      }
    });
  }

  it('--quantize mlx4 of a Llama of rows of 64, 2 stages: one process\'s tokens and blocks', async () => {
    const { file, reference } = floatFileAndQuantized('mlx4', MLX_LLAMA, 'mlx4');
    const stages = await startStages(MLX_LLAMA, { file, quantize: 'mlx4' }, 2);
    try {
      await assertOneProcessTokens(stages, reference);
      assert.deepEqual((await assertHeldAsOneProcess(stages, reference)).map((f) => [...f]), [['mlx4'], ['mlx4']]);
    } finally {
      await stages.close();
    }
  });

  it('--quantize q8_0 of an F32 GGUF file, 2 stages: one process\'s tokens and blocks', async () => {
    const file = await ggufOf('llama-f32', randomModel(LLAMA_Q8, 35), LLAMA_Q8);
    const reference = loadGgufModel(file);
    quantizeModel(reference.model, reference.spec, 'q8_0');
    const stages = await startStages(reference.spec, { gguf: file, quantize: 'q8_0' }, 2);
    try {
      await assertOneProcessTokens(stages, reference.model as unknown as CausalLm);
      assert.deepEqual((await assertHeldAsOneProcess(stages, reference.model)).map((f) => [...f]), [['q8_0'], ['q8_0']]);
    } finally {
      await stages.close();
    }
  });

  it('--quantize q4_k_m of a safetensors file, 3 stages: the whole model\'s plan (layers 0, 3, 6, 7 with more bits wherever they stand), one process\'s tokens and blocks', async () => {
    const stages = await startStages(QWEN2_K, { file: qwen2File, quantize: 'q4_k_m' }, 3);
    try {
      await assertOneProcessTokens(stages, qwen2Quantized);
      await assertHeldAsOneProcess(stages, qwen2Quantized);
      const downProj = new Map(stages.joined.flatMap((j) => j.stage.namedParameters()).filter(([n]) => n.endsWith('mlp.down_proj.weight')));
      assert.deepEqual(Array.from({ length: 8 }, (_, l) => downProj.get(`model.layers.${l}.mlp.down_proj.weight`)!.dtype), ['q6_k', 'q4_k', 'q4_k', 'q6_k', 'q4_k', 'q4_k', 'q6_k', 'q6_k']);
    } finally {
      await stages.close();
    }
  });

  it('a stage started by hand: the driver\'s line names --quantize, and a stage given it joins and decodes one process\'s tokens', async () => {
    const { file, reference } = floatFileAndQuantized('by-hand', LLAMA_Q8, 'q4_0');
    const port = await freePort();
    const lines: string[] = [];
    const saved = process.env[TOKEN_ENV];
    process.env[TOKEN_ENV] = TOKEN;
    try {
      const weights: StageWeights = { file, quantize: 'q4_0' };
      const driver = startPipeline({ source: file, spec: LLAMA_Q8, weights, stages: 2, master: `127.0.0.1:${port}`, timeoutMs: 20_000, maxBatch: 4, log: (l) => lines.push(l) });
      const stage = await joinStages({ spec: LLAMA_Q8, weights, stages: 2, rank: 1, masterHost: '127.0.0.1', masterPort: port, hostStore: false, token: TOKEN, timeoutMs: 20_000, maxBatch: 4 });
      const worker = runStageWorker({ transport: stage.cluster.transport, rows: stage.rows });
      const pipeline = await driver;
      try {
        assert.match(lines[0], new RegExp(`smolcluster stage --model SRC --quantize q4_0 --stages 2 --rank R --stage-master 127\\.0\\.0\\.1:${port}$`));
        const greedy = await generateAcross(pipeline.batch, PROMPTS, { maxNewTokens: 6 });
        for (const [i, p] of PROMPTS.entries()) assert.deepEqual(greedy[i].ids, (await generate(reference, p, { maxNewTokens: 6 })).ids, `prompt ${i}`);
      } finally {
        await pipeline.close();
        await worker;
        await stage.cluster.close();
      }
    } finally {
      if (saved === undefined) delete process.env[TOKEN_ENV];
      else process.env[TOKEN_ENV] = saved;
    }
  });

  it('the scheme and the file\'s formats are in the stage signature: a stage quantizing otherwise is refused at connect', async () => {
    const file = join(dir, 'signed.safetensors');
    saveSafetensors(file, randomModel(LLAMA_Q8, 34), LLAMA_Q8);
    const signatures = [{ file }, { file, quantize: 'q4_0' }, { file, quantize: 'q8_0' }, { gguf: q8 }].map((w) => stageSignature(LLAMA_Q8, 'fp32', w as StageWeights));
    assert.equal(new Set(signatures).size, signatures.length);
    const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN, worldSize: 2, signature: stageSignature(LLAMA_Q8, 'fp32', { file, quantize: 'q4_0' }) });
    try {
      await assert.rejects(joinStages({
        spec: LLAMA_Q8, weights: { file, quantize: 'q8_0' }, stages: 2, rank: 1, masterHost: '127.0.0.1', masterPort: store.port, hostStore: false, token: TOKEN, timeoutMs: 10_000, maxBatch: 1,
      }), /model signature mismatch: --quantize: .* has q4_0, rank 1 has q8_0/);
    } finally {
      await store.close();
    }
  });

  it('refused by name, as one process refuses them: --quantize over a quantized GGUF file, MLX folder or GPT-2, an adapter with either', async () => {
    await assert.rejects(stageSource(q8.path, { quantize: 'q4_0' }), /llama-q8_0\.gguf: is quantized already; --quantize q4_0 takes a float model/);
    await assert.rejects(stageSource(q8.path, { adapter: join(dir, 'adapter') }), /--adapter: is not carried over --stages with a GGUF file yet/);
    const gpt2: ModelSpec = { type: 'gpt2', vocabSize: 61, context: 32, layers: 2, width: 32, heads: 4, dropout: 0 };
    const file = join(dir, 'gpt2.safetensors');
    saveSafetensors(file, randomModel(gpt2, 1), gpt2);
    await assert.rejects(stageSource(file, { quantize: 'q8_0' }), /gpt2\.safetensors: holds a gpt2 model; --quantize takes the Llama family/);
    const mlx = join(dir, 'mlx-refused');
    writeMlxFolder(mlx, randomModel(MLX_LLAMA, 2), MLX_LLAMA, { quantization: { group_size: 64, bits: 4 } });
    await assert.rejects(stageSource(mlx, { quantize: 'q4_0' }), /mlx-refused: is quantized already; --quantize q4_0 takes a float model/);
    await assert.rejects(stageSource(mlx, { adapter: join(dir, 'adapter') }), /--adapter: is not carried over --stages with an MLX quantized folder yet/);
  });

  it('an MLX 4-bit folder (mlx-lm\'s codes, scales and biases), 2 stages: one process\'s tokens, each stage holding only its layers\' groups', async () => {
    const folder = join(dir, 'mlx-4bit');
    writeMlxFolder(folder, randomModel(MLX_LLAMA, 36), MLX_LLAMA, { quantization: { group_size: 64, bits: 4 } });
    const source = await stageSource(folder);
    assert.ok('mlx' in source.weights, 'the stages read the folder\'s groups');
    const reference = loadMlxFolder(folder, MLX_LLAMA, { groupSize: 64, bits: 4 });
    const stages = await startStages(MLX_LLAMA, source.weights, 2);
    try {
      await assertOneProcessTokens(stages, reference as unknown as CausalLm);
      assert.deepEqual((await assertHeldAsOneProcess(stages, reference)).map((f) => [...f]), [['mlx4'], ['mlx4']]);
    } finally {
      await stages.close();
    }
    // Its quantization is in the signature: a stage over the same shape's 8-bit folder is told apart.
    const mlx8 = join(dir, 'mlx-8bit');
    writeMlxFolder(mlx8, randomModel(MLX_LLAMA, 36), MLX_LLAMA, { quantization: { group_size: 64, bits: 8 } }, 8);
    const other = await stageSource(mlx8);
    assert.notEqual(stageSignature(MLX_LLAMA, 'fp32', other.weights), stageSignature(MLX_LLAMA, 'fp32', source.weights));
  });

  it('placement counts the bytes held: a model that needs 3 ranks in float32 fits on 2, and on 1, quantized (--quantize q4_k_m, or the Q4_K_M file)', () => {
    const whole = deferredModel(QWEN2_K, 0);
    const layers = modelLayers(whole, 'llama');
    const float = layerBytes(layers, heldBytes(new Map())).reduce((a, b) => a + b, 0);
    // Each rank 45 % of the float32 weights: two hold 90 %, three 135 %.
    const ranks = (n: number): { msPerWeight: number; memoryBytes: number }[] => Array.from({ length: n }, () => ({ msPerWeight: 1, memoryBytes: 0.45 * float }));
    const place = (n: number, weights: StageWeights): ReturnType<typeof placeGeneration> => placeGeneration(QWEN2_K, layers, ranks(n), { maxBatch: 1, bytesOf: heldBytes(heldFormats(QWEN2_K, whole, weights)) });
    const file = join(dir, 'never-read.safetensors');
    assert.throws(() => place(2, { file }), /do not fit in the memory of the 2 pipeline nodes/);
    assert.equal(place(3, { file }).ranges.length, 3);
    for (const weights of [{ file, quantize: 'q4_k_m' }, { gguf: q4km }] as StageWeights[]) {
      const held = layerBytes(layers, heldBytes(heldFormats(QWEN2_K, whole, weights))).reduce((a, b) => a + b, 0);
      assert.ok(held < 0.25 * float, `Q4_K_M holds ${held} bytes, float32 ${float}`);
      assert.deepEqual(place(2, weights).ranges.length, 2);
      assert.deepEqual(place(1, weights).ranges, [[0, layers.length]]);
    }
    // bf16 holds a 2-byte cast beside each float weight, and none beside a quantized one.
    assert.equal(layerBytes(layers, heldBytes(new Map(), 'bf16')).reduce((a, b) => a + b, 0), 1.5 * float);
  });
});
