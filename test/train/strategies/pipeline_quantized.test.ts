/**
 * Pipeline stages over a quantized base, in process, 2 ranks against one process at the same batch:
 * - over a GGUF file's Q8_0 blocks, an MLX 4-bit folder's groups and a float folder quantized to
 *   NF4 at load (--lora-base-dtype), each stage holds only its own layers' base (the others' parameters are not
 *   in it at all), in the formats one process holds them, and trains its layers' adapters as one
 *   process does (within 1e-5); rank 0's whole model for --save carries the adapters only and
 *   saves the PEFT folder one process saves;
 * - the plan is made from one probed block (no rank reads the whole base) and says so;
 * - with --activation-checkpointing each stage checkpoints its own layers, to the same adapters;
 * - what stages over a quantized base cannot do is refused by flag: --zero 1, --lora-base-dtype
 *   over a quantized --init, --merge-lora.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { loadDataset } from '../../../src/data/load.js';
import { readGgufHeader } from '../../../src/nn/interchange/gguf.js';
import { exportGguf } from '../../../src/nn/interchange/gguf_export.js';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { readSafetensors, toFloat32 } from '../../../src/nn/interchange/safetensors.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, saveAdapter } from '../../../src/nn/lora/index.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { checkpointScratch } from '../../../src/nn/activation_checkpointing.js';
import { isDeferred } from '../../../src/tensor/deferred_init.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { PipelineStrategy } from '../../../src/train/strategies/pipeline.js';
import { writeMlxFolder } from '../../helpers/mlx_folder.js';
import { maxRelDiff, tempDir } from '../../helpers/cluster.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 64, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('pipeline-quantized');
after(() => rmSync(dir, { recursive: true, force: true }));
const base = createModel(SPEC, 5);
const folder = join(dir, 'float');
saveFolder(folder, base, SPEC);
const gguf = join(dir, 'tiny-q8_0.gguf');
const mlx = join(dir, 'mlx4');
writeMlxFolder(mlx, base, SPEC, { quantization: { group_size: 64, bits: 4 } });
const data = loadDataset({ name: 'synthetic_text', seed: 1, tokenTask: 'language-model', contextLength: 16 });
const config = (over: Partial<TrainConfig>): TrainConfig => ({
  ...defaultConfig('llama-tiny'), dataset: 'synthetic_text', context: 16, maxSteps: 2, evalEvery: 0, evalBatchSize: 16, batchSize: 8,
  optimizer: 'adamw', lr: 1e-2, dropout: 0, loraRank: 4, loraTargets: ['q_proj', 'v_proj', 'down_proj'], ...over,
});
const pipeline = (g: ProcessGroup, zero?: 1): PipelineStrategy => new PipelineStrategy(g, { stages: 2, microBatches: 2, schedule: '1f1b', zero }, (dp) => new AllReduceStrategy(dp, { checksumEvery: 0 }));

async function twoStages(c: TrainConfig): Promise<Array<TrainOutcome & { strategy: PipelineStrategy; stderr: string }>> {
  const groups = createInProcessTransports(2, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 20_000 }));
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    const ranks = await Promise.all(groups.map(async (g) => {
      const strategy = pipeline(g);
      return { ...(await train(c, data, strategy)), strategy };
    }));
    return ranks.map((r) => ({ ...r, stderr }));
  } finally {
    process.stderr.write = write;
  }
}

const trained = (m: Module): Map<string, Float32Array> => new Map(m.namedParameters().filter(([, p]) => p.requiresGrad).map(([n, p]) => [n, Float32Array.from(p.values() as Float32Array)]));

/** The adapters `got` trained within 1e-5 of `want`'s, the same names. */
function assertSameAdapters(got: Module, want: Module, what: string): void {
  const [a, b] = [trained(got), trained(want)];
  const names = [...b.keys()].sort();
  assert.deepEqual([...a.keys()].sort(), names, `${what}: the same parameters train`);
  const flat = (m: Map<string, Float32Array>): Float32Array => Float32Array.from(names.flatMap((n) => Array.from(m.get(n)!)));
  const d = maxRelDiff(flat(a), flat(b));
  assert.ok(d < 1e-5, `${what}: the adapters differ from one process's by ${d}`);
}

/** Each stage holds its own layers' base and no other's, every frozen matrix in the format one process holds it in. */
function assertStagesHoldTheirLayers(ranks: Array<TrainOutcome & { strategy: PipelineStrategy }>, one: Module, what: string): void {
  const formats = new Map(one.namedParameters().map(([n, p]) => [n, p.dtype]));
  const layerOf = (name: string): string => /^model\.layers\.(\d+)\./.exec(name)?.[1] ?? name.split('.').slice(0, 2).join('.');
  const held = ranks.map((r) => r.model.namedParameters());
  for (const params of held) {
    for (const [name, p] of params) {
      assert.ok(!isDeferred(p.storage), `${what}: ${name} has its values`);
      assert.equal(p.dtype, formats.get(name), `${what}: ${name} is held as one process holds it`);
    }
  }
  const [first, second] = held.map((params) => new Set(params.map(([n]) => layerOf(n))));
  assert.deepEqual([...first].filter((l) => second.has(l)), [], `${what}: no layer is held by both stages`);
  assert.equal(first.size + second.size, new Set(one.namedParameters().map(([n]) => layerOf(n))).size, `${what}: the two stages hold every layer`);
  assert.ok(held[0].some(([, p]) => p.dtype === formats.get('model.layers.0.self_attn.q_proj.weight')), `${what}: stage 0 holds quantized blocks`);
}

/** The PEFT folder rank 0's whole model saves equals the one process's (the same config, A and B within 1e-5). */
async function assertSameFolder(whole: Module, one: TrainOutcome, what: string): Promise<void> {
  const [mine, theirs] = [join(dir, what), join(dir, `${what}-single`)];
  await saveAdapter(mine, whole, one.spec, gguf);
  await saveAdapter(theirs, one.model, one.spec, gguf);
  assert.equal(readFileSync(join(mine, ADAPTER_CONFIG), 'utf8'), readFileSync(join(theirs, ADAPTER_CONFIG), 'utf8'));
  const [a, b] = [readSafetensors(join(mine, ADAPTER_WEIGHTS)).tensors, readSafetensors(join(theirs, ADAPTER_WEIGHTS)).tensors];
  assert.deepEqual([...a.keys()], [...b.keys()]);
  const flat = (m: typeof a): Float32Array => Float32Array.from([...m].flatMap(([name, t]) => Array.from(toFloat32('', name, t))));
  assert.ok(maxRelDiff(flat(a), flat(b)) < 1e-5, `${what}: the saved adapters differ by ${maxRelDiff(flat(a), flat(b))}`);
}

describe('pipeline stages over a quantized base (2 in-process ranks against one process)', { timeout: 120_000 }, () => {
  const written = exportGguf(gguf, base, SPEC, { quantize: 'q8_0', tokenizer: { gguf: {} } }).then(() => readGgufHeader(gguf));

  const cases: [string, Partial<TrainConfig>][] = [
    ['a GGUF file\'s Q8_0 blocks', { init: gguf }],
    ['a float folder quantized to NF4 at load', { init: folder, loraBaseDtype: 'nf4' }],
    ['an MLX 4-bit folder\'s groups', { init: mlx }],
    ['a GGUF file with activation checkpointing', { init: gguf, activationCheckpointing: true }],
  ];
  for (const [what, over] of cases) {
    it(`over ${what}: each stage holds its layers only, trains the adapters one process trains, and rank 0 saves the same PEFT folder`, async () => {
      await written;
      const one = await train(config(over), data, new LocalStrategy());
      const ranks = await twoStages(config(over));
      assertStagesHoldTheirLayers(ranks, one.model, what);
      if (over.activationCheckpointing) for (const r of ranks) assert.ok(checkpointScratch(r.model), `${what}: rank ${r.strategy.rank}'s stage runs its layers checkpointed`);
      assert.match(ranks[0].stderr, /pipeline placement \(cut so that the slowest stage is fastest, by each layer's weights × its stage's measured forward\+backward ms per weight of one block/);
      const [whole] = await Promise.all(ranks.map((r) => r.strategy.savedModel(r.model, r.spec)));
      assert.ok(whole);
      assertSameAdapters(whole, one.model, what);
      await assertSameFolder(whole, one, what.replace(/\W+/g, '-'));
    });
  }

  it('refuses by flag what stages over a quantized base do not do: --zero 1, --lora-base-dtype over a quantized --init, --merge-lora', async () => {
    await written;
    // Refused before any message: rank 0 of a pair, alone.
    const one = (): ProcessGroup => createInProcessTransports(2, { timeoutMs: 1000 }).map((t) => new ProcessGroup(t))[0];
    await assert.rejects(train(config({ init: gguf }), data, pipeline(one(), 1)), /--init\): a quantized base trains in one process, with data parallelism \(allreduce\) or over pipeline stages \(--pipeline-stages, without --zero or --tensor-parallel\); the allreduce\+pp2\+zero1 strategy/);
    await assert.rejects(train(config({ init: mlx, loraBaseDtype: 'nf4' }), data, pipeline(one())), /--lora-base-dtype nf4\): the --init model is quantized already \(.*mlx4 is an MLX quantized folder\); leave --lora-base-dtype out/);
    await assert.rejects(train(config({ init: gguf, mergeLora: true }), data, pipeline(one())), /--merge-lora\): each pipeline stage holds its own layers of the quantized base .*`smolcluster export --model BASE --adapter DIR/);
  });
});
