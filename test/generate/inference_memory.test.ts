/**
 * The memory a model needs for inference, estimated from its config alone (src/generate/inference_memory.ts),
 * and the refusal of one that cannot fit before a weight is read: one process (loadGenerator, the
 * generate command) and pipeline stages (serve/stages/stage_memory.ts, generate --stages N).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InsufficientMemoryError, RUNTIME_BYTES, estimateInferenceMemory, kvBytes, parameterShapes } from '../../src/generate/inference_memory.js';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { type LlamaSpec, defaultSpec } from '../../src/nn/models/index.js';
import { checkStagesMemory, stagesNeed } from '../../src/serve/stages/stage_memory.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-inference-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Llama-3.1-70B's config.json and nothing else: no weight can be read. */
const LLAMA_70B = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 8192, intermediate_size: 28672, num_attention_heads: 64,
  num_key_value_heads: 8, num_hidden_layers: 80, vocab_size: 128256, max_position_embeddings: 131072, rms_norm_eps: 1e-5,
  rope_theta: 500000, tie_word_embeddings: false, bos_token_id: 128000, eos_token_id: 128001, torch_dtype: 'bfloat16',
};
const big = join(dir, 'llama-70b');
mkdirSync(big);
writeFileSync(join(big, 'config.json'), JSON.stringify(LLAMA_70B));

const qwen = defaultSpec('qwen2.5-0.5b', [256], 151936) as LlamaSpec;

describe('the inference estimate', () => {
  it('the Qwen2.5-0.5B shape: its 494,032,768 parameters in float32, the KV cache at a power of two of positions, exact bytes', () => {
    const params = parameterShapes(qwen).reduce((n, [, d]) => n + d.reduce((a, b) => a * b, 1), 0);
    assert.equal(params, 494_032_768);
    const m = estimateInferenceMemory(qwen, { positions: 1000 });
    assert.equal(m.weights, 4 * params);
    // 24 layers × (k, v) × 2 kv heads × 64 × 1024 positions (the cache doubles from 16) × 4 bytes.
    assert.equal(m.kvCache, 24 * 2 * 2 * 64 * 1024 * 4);
    assert.equal(m.kvCache, kvBytes(qwen, 1024, 1));
    // One prefill of 1000 tokens: 10 widths, 3 intermediates, scores and probabilities of 14 heads; one row's logits.
    assert.equal(m.activations, 4 * (1000 * (10 * 896 + 3 * 4864 + 2 * 14 * 1000) + 151936));
    // Into a float32 arena: the file (at most float32), the arena, the largest tensor (the embedding) widened, the huge-page copy.
    const embedding = 4 * 151936 * 896;
    assert.equal(m.loading, 3 * 4 * params + embedding + RUNTIME_BYTES);
    // In place (a Llama-family folder on the cpu): the weights and one 16 MiB chunk.
    assert.equal(estimateInferenceMemory(qwen, { positions: 1000, inPlace: true }).loading, 4 * params + 16 * 2 ** 20 + RUNTIME_BYTES);
    // 5 % of the weights for the kernels' scratch (bench:generate-memory).
    assert.equal(m.generating, 4 * params * 1.05 + m.kvCache + m.activations + RUNTIME_BYTES);
    assert.equal(m.total, Math.max(m.loading, m.generating));
  });

  it('bf16: a matrix\'s held cast and its packed copy beside its float32, a vector none; the KV cache in bf16', () => {
    const shapes = parameterShapes(qwen);
    const matrices = shapes.filter(([, d]) => d.length === 2).reduce((n, [, d]) => n + d[0] * d[1], 0);
    const fp32 = estimateInferenceMemory(qwen, { positions: 100 });
    const bf16 = estimateInferenceMemory(qwen, { positions: 100, precision: 'bf16' });
    assert.equal(bf16.weights - fp32.weights, 4 * matrices);
    assert.equal(bf16.kvCache * 2, fp32.kvCache);
  });

  it('a quantized weight at its format\'s bytes; --quantize loads the whole float32 model first', () => {
    const embed = parameterShapes(qwen).find(([n]) => n.includes('embed'))!;
    const formats = new Map([[embed[0], 'q8_0' as const]]);
    const m = estimateInferenceMemory(qwen, { positions: 16, formats });
    const plain = estimateInferenceMemory(qwen, { positions: 16 });
    const elements = embed[1][0] * embed[1][1];
    // q8_0: 34 bytes a block of 32.
    assert.equal(plain.weights - m.weights, 4 * elements - (elements / 32) * 34);
    assert.equal(m.formats, 'q8_0 + float32');
    // Quantizing at load: the arena's peak (file, arena, the embedding widened, the float32 left copied into huge pages).
    const atLoad = estimateInferenceMemory(qwen, { positions: 16, formats, quantizedAtLoad: true });
    const rest = plain.weights - 4 * elements;
    assert.equal(atLoad.loading, 2 * plain.weights + 4 * elements + rest + RUNTIME_BYTES);
  });
});

describe('a model that cannot fit is refused before any weight is read', () => {
  it('loadGenerator: a 70B config.json alone (no weights) is refused naming the need and what is available', async () => {
    await assert.rejects(loadGenerator(big, { tokenizer: 'bytes', availableBytes: 23.5e9 }), (e: unknown) => {
      assert.ok(e instanceof InsufficientMemoryError, String(e));
      // 70.55B parameters, its matrices in bfloat16 as fp32 generation of a BF16 folder holds them (widened a tile at a time).
      assert.ok(e.need.weights > 140e9 && e.need.weights < 142e9, `${e.need.weights}`);
      assert.equal(e.need.formats, 'bfloat16 + float32');
      assert.equal(e.available, 23.5e9);
      assert.match(e.message, /needs ≈ \d+\.\d GB .*this node has 23\.5 GB available/);
      assert.match(e.message, /--stages N/);
      assert.match(e.message, /q4_k_m: ≈ \d+\.\d GB/);
      return true;
    });
  });

  it('in bf16 a bfloat16 config.json without weight files is counted as its BF16 folder would be held: 2 bytes a matrix weight', async () => {
    await assert.rejects(loadGenerator(big, { tokenizer: 'bytes', precision: 'bf16', availableBytes: 23.5e9 }), (e: unknown) => {
      assert.ok(e instanceof InsufficientMemoryError, String(e));
      assert.equal(e.need.formats, 'bfloat16 + float32');
      assert.ok(e.need.weights > 140e9 && e.need.weights < 142e9, `${e.need.weights}`);
      return true;
    });
  });

  it('generate --model <70B folder>: exits at once with the refusal, not the OOM killer', async () => {
    const started = Date.now();
    const r = await runCli(['generate', '--model', big, '--prompt', 'hi', '--tokenizer', 'bytes']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the model needs ≈ \d+\.\d GB \(weights \d+\.\d GB bfloat16 \+ float32, KV cache .* at 146 positions × 1/);
    assert.match(r.stderr, /this node has \d+\.\d+ GB available/);
    assert.ok(Date.now() - started < 20_000);
  });

  it('generate --stages 2: refused before any stage process starts (they would share this machine)', async () => {
    const r = await runCli(['generate', '--model', big, '--prompt', 'hi', '--tokenizer', 'bytes', '--stages', '2']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /over 2 stage processes; the 2 stages share one host's \d+\.\d+ GB \(rank 0 at this process: .*, rank 1 at 127\.0\.0\.1: /);
    assert.doesNotMatch(r.stderr, /\[stage 1\]/);
  });

  it('--stage-master: the driver and a stage started by hand both refuse right after the rendezvous, before the probe builds a block', async () => {
    const master = `127.0.0.1:${await freePort()}`;
    const env = { SMOLCLUSTER_TOKEN: 'inference-memory-test-token' };
    const started = Date.now();
    const driver = runCli(['generate', '--model', big, '--prompt', 'hi', '--tokenizer', 'bytes', '--stages', '2', '--stage-master', master], { env });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const stage = await runCli(['stage', '--model', big, '--stages', '2', '--rank', '1', '--stage-master', master], { env });
    const drove = await driver;
    for (const r of [drove, stage]) {
      assert.equal(r.code, 1, r.stderr);
      // Both ranks on this host: its memory counted once, and the same need (rank 0's --max-batch) on both.
      assert.match(r.stderr, /the model needs ≈ [\d.]+ GB .* over 2 stage processes; the 2 stages share one host's/);
      assert.doesNotMatch(r.stderr, /loading layers/);
    }
    assert.equal(/needs ≈ ([\d.]+ GB)/.exec(drove.stderr)![1], /needs ≈ ([\d.]+ GB)/.exec(stage.stderr)![1]);
    // A 70B block's probe alone would take many seconds and 3.4 GB.
    assert.ok(Date.now() - started < 30_000);
  });

  it('stages on one host count its memory once; on several hosts, together', () => {
    const need = stagesNeed(qwen, { seed: 0 }, { stages: 2, maxBatch: 1 });
    assert.equal(need.total, need.need.generating + RUNTIME_BYTES);
    const half = need.total * 0.6;
    const oneHost = [{ rank: 0, host: 'a', where: 'this process', bytes: half }, { rank: 1, host: 'a', where: '127.0.0.1', bytes: half }];
    assert.throws(() => checkStagesMemory(need, oneHost), InsufficientMemoryError);
    checkStagesMemory(need, [oneHost[0], { ...oneHost[1], host: 'b' }]);
  });
});
