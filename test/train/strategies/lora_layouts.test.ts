/**
 * LoRA and --freeze under the strategies that build the model themselves, in process, 2 ranks
 * against one process at the same global batch: ZeRO 1, 2 and 3 shard only what trains into the
 * optimizer's shards (the shard plan covers the adapters alone, so no optimizer state for the
 * base); stages 1 and 2 hold the frozen base whole on every rank, stage 3 shards it too (each rank
 * holds half, in fp32 or with --lora-base-dtype bf16 in bf16, gathered per layer); pipeline stages carry their layers' adapters (GPT-2's frozen tied embedding
 * and its last-stage copy are left out of the tied-gradient sum). The adapters each layout trains
 * equal one process's within 1e-5, the base never moves, and the PEFT folder written from each
 * layout's whole model (what --save writes: saveAdapter) equals one process's. A base held in
 * bf16 (--lora-base-dtype bf16) under ZeRO takes half the bytes on every rank and trains the
 * adapters of one process with a bf16 base within BF16_TRAINED (6 × 2⁻⁹ of the largest
 * trained value), to the fp32 run's loss within 1 %.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { loadDataset } from '../../../src/data/load.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loraLayers, mergeLora, readParameterFloat32, saveAdapter } from '../../../src/nn/lora/index.js';
import { readSafetensors, toFloat32 } from '../../../src/nn/interchange/safetensors.js';
import { createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { PipelineStrategy } from '../../../src/train/strategies/pipeline.js';
import type { Strategy } from '../../../src/train/strategies/strategy.js';
import { TensorParallelStrategy } from '../../../src/train/strategies/tensor_parallel.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import { maxRelDiff, tempDir } from '../../helpers/cluster.js';

const data = loadDataset({ name: 'synthetic_text', seed: 1, tokenTask: 'language-model', contextLength: 16 });
const config = (over: Partial<TrainConfig>): TrainConfig => ({
  ...defaultConfig('gpt2-tiny'), dataset: 'synthetic_text', context: 16, maxSteps: 2, evalEvery: 0, evalBatchSize: 16, batchSize: 8,
  optimizer: 'adamw', lr: 1e-2, dropout: 0, ...over,
});
const LORA: Partial<TrainConfig> = { loraRank: 4, loraTargets: ['c_attn', 'c_proj'] };

const dir = tempDir('lora-layouts');
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * How far two runs with a bf16 base may train apart, over the largest trained value: each rank's
 * bf16 products round gy (at its own loss scale, half the batch), x and W once each (3 × 2⁻⁹), and
 * Adam's second step divides by √v̂ of the same rounded gradients, doubling a relative difference:
 * 6 × 2⁻⁹ ≈ 0.0117 (torch.testing's bf16 rtol is 1.6e-2). Which kernels round where
 * is the CPU's (AMX, AVX512-BF16, or oneDNN's emulation on AVX-512 and AVX2): seen here 0.0013 at
 * amx, 0.0040 at avx512-vnni, 0.0020 at avx2 and 0.0022 generic (SMOLCLUSTER_CPU).
 */
const BF16_TRAINED = 6 * 2 ** -9;

/** Two in-process ranks running the loop with the strategies `make` builds; each rank's outcome and strategy. */
async function twoRanks(c: TrainConfig, make: (g: ProcessGroup) => Strategy): Promise<Array<TrainOutcome & { strategy: Strategy }>> {
  const groups = createInProcessTransports(2, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 20_000 }));
  return Promise.all(groups.map(async (g) => {
    const strategy = make(g);
    return { ...(await train(c, data, strategy)), strategy };
  }));
}

const valuesOf = (m: Module, which: (trains: boolean) => boolean): Map<string, Float32Array> =>
  new Map(m.namedParameters().filter(([, p]) => which(p.requiresGrad)).map(([n, p]) => [n, Float32Array.from(p.values() as Float32Array)]));

/** How far `got`'s trained parameters are from `want`'s (the same names train), over all of them. */
function trainedDiff(got: Module, want: Module, what: string): number {
  const [a, b] = [valuesOf(got, (t) => t), valuesOf(want, (t) => t)];
  const names = [...b.keys()].sort();
  assert.deepEqual([...a.keys()].sort(), names, `${what}: the same parameters train`);
  const flat = (m: Map<string, Float32Array>): Float32Array => Float32Array.from(names.flatMap((n) => Array.from(m.get(n)!)));
  return maxRelDiff(flat(a), flat(b));
}

/** Every trained parameter of `got` within 1e-5 of one process's; the frozen ones exactly the untrained model's. */
function assertSameTraining(got: Module, single: TrainOutcome, what: string): void {
  const d = trainedDiff(got, single.model, what);
  assert.ok(d < 1e-5, `${what}: the trained parameters differ from one process's by ${d}`);
  const fresh = new Map(createModel(single.spec, 0).namedParameters());
  for (const [name, v] of valuesOf(got, (t) => !t)) assert.deepEqual(v, Float32Array.from(fresh.get(name)!.values() as Float32Array), `${what}: frozen ${name} moved`);
}

/** The PEFT folder `model` saves equals one process's: the same config, every A and B within 1e-5. */
async function assertSameFolder(model: Module, single: TrainOutcome, what: string): Promise<void> {
  await assertSameFolderWithin(model, single, what, 1e-5);
}

async function assertSameFolderWithin(model: Module, single: TrainOutcome, what: string, within: number): Promise<void> {
  const [mine, theirs] = [join(dir, what), join(dir, `${what}-single`)];
  await saveAdapter(mine, model, single.spec);
  await saveAdapter(theirs, single.model, single.spec);
  assert.equal(readFileSync(join(mine, ADAPTER_CONFIG), 'utf8'), readFileSync(join(theirs, ADAPTER_CONFIG), 'utf8'));
  const [a, b] = [readSafetensors(join(mine, ADAPTER_WEIGHTS)).tensors, readSafetensors(join(theirs, ADAPTER_WEIGHTS)).tensors];
  assert.deepEqual([...a.keys()], [...b.keys()]);
  const flat = (m: typeof a): Float32Array => Float32Array.from([...m].flatMap(([name, t]) => Array.from(toFloat32('', name, t))));
  assert.ok(maxRelDiff(flat(a), flat(b)) < within, `${what}: the saved adapters differ by ${maxRelDiff(flat(a), flat(b))}`);
}

/**
 * ZeRO-3 shards the frozen base too: rank 1 holds none of it whole (every frozen tensor released
 * after the run), and the two ranks' frozen shards together are the base's bytes at
 * `bytesPerValue` (plus at most one bf16 value of padding per tensor), each rank about half.
 */
function assertBaseSharded(ranks: Array<TrainOutcome & { strategy: Strategy }>, whole: Module, bytesPerValue: number): void {
  const frozen = whole.namedParameters().filter(([, p]) => !p.requiresGrad);
  const values = frozen.reduce((n, [, p]) => n + p.size, 0);
  assert.ok(frozen.length > 0);
  for (const [name, p] of ranks[1].model.namedParameters()) if (!p.requiresGrad) assert.throws(() => p.values(), /is used while it is sharded/, `rank 1 holds ${name} whole`);
  const bytes = ranks.map((r) => (r.strategy as ZeroStrategy).frozenShardBytes());
  const sum = bytes[0] + bytes[1];
  assert.ok(sum >= values * bytesPerValue && sum <= (values + frozen.length) * bytesPerValue, `the frozen shards hold ${sum} bytes for a base of ${values * bytesPerValue}`);
  for (const b of bytes) assert.ok(Math.abs(b - sum / 2) <= 16, `a rank holds ${b} of the base's ${sum} bytes`);
}

describe('LoRA and --freeze under ZeRO and pipeline stages (2 in-process ranks against one process)', () => {
  const single = train(config(LORA), data, new LocalStrategy());

  for (const stage of [1, 2, 3] as const) {
    it(`--zero ${stage}: the shards are the adapters' only; adapters equal one process's, the base ${stage < 3 ? 'held whole' : 'sharded (gathered per layer)'} and untouched, the same PEFT folder`, async () => {
      const one = await single;
      const ranks = await twoRanks(config({ ...LORA, batchSize: 4 }), (g) => new ZeroStrategy(g, { stage, checksumEvery: 1 }));
      const shards = ranks.map((r) => (r.strategy as ZeroStrategy).shardRange());
      assert.deepEqual(shards.map(([a, b]) => b - a).reduce((x, y) => x + y), one.model.arena().size, 'the two shards cover the adapters, nothing of the base');
      assert.ok(ranks[1].model.arena().size < one.model.arena().size, 'rank 1\'s arena (its optimizer\'s state) is its shard of the adapters');
      // After the run rank 0's model is whole (stage 3 gathers it there for --save).
      assertSameTraining(ranks[0].model, one, `--zero ${stage}`);
      if (stage < 3) assert.deepEqual(valuesOf(ranks[1].model, (t) => !t), valuesOf(ranks[0].model, (t) => !t), 'stages 1, 2: the other rank\'s frozen base is whole all along');
      else assertBaseSharded(ranks, one.model, 4);
      await assertSameFolder(ranks[0].model, one, `zero${stage}`);
    });
  }

  it('--zero 3 from an --adapter folder: the shards start from its A and B (recorded in the deferred build), as one process does', async () => {
    const one = await single;
    const folder = join(dir, 'start');
    await saveAdapter(folder, one.model, one.spec);
    const from: Partial<TrainConfig> = { adapter: folder, loraTargets: undefined, loraRank: undefined, maxSteps: 1 };
    const resumed = await train(config(from), data, new LocalStrategy());
    const ranks = await twoRanks(config({ ...from, batchSize: 4 }), (g) => new ZeroStrategy(g, { stage: 3, checksumEvery: 0 }));
    assertSameTraining(ranks[0].model, resumed, '--zero 3 --adapter');
    // Not the step a fresh start takes: the folder's A and B were loaded.
    const fresh = await train(config({ ...LORA, maxSteps: 1 }), data, new LocalStrategy());
    const apart = trainedDiff(ranks[0].model, fresh.model, 'fresh');
    assert.ok(apart > 1e-2, `one step from the folder is ${apart} from one step from scratch`);
  });

  it('--zero 2 with the base held in bf16: one bf16-base process\'s adapters within BF16_TRAINED (6 × 2⁻⁹), fp32\'s loss within 1 %; the base\'s bytes halved', async () => {
    const fp32 = await single;
    const bf16: Partial<TrainConfig> = { ...LORA, loraBaseDtype: 'bf16' };
    const one = await train(config(bf16), data, new LocalStrategy());
    const ranks = await twoRanks(config({ ...bf16, batchSize: 4 }), (g) => new ZeroStrategy(g, { stage: 2, checksumEvery: 1 }));
    const baseBytes = (m: Module): number => loraLayers(m).reduce((n, [, l]) => n + l.weight.storage.byteLength, 0);
    for (const r of ranks) assert.equal(2 * baseBytes(r.model), baseBytes(fp32.model), 'every rank holds the adapted weights in half the bytes');
    // Not 1e-5: the bf16 matmuls round what flows back through them at each rank's own loss scale (half the batch).
    const d = trainedDiff(ranks[0].model, one.model, 'bf16 base');
    assert.ok(d < BF16_TRAINED, `--zero 2 against one process, both with a bf16 base: ${d}`);
    // Against fp32 the loss (Adam's first steps move each value by about lr whatever its gradient's size, so values are no measure).
    for (const o of [one, ...ranks]) assert.ok(o.finalLoss !== fp32.finalLoss && Math.abs(o.finalLoss - fp32.finalLoss) < 0.01 * fp32.finalLoss, `loss ${o.finalLoss} with a bf16 base, ${fp32.finalLoss} in fp32`);
  });

  it('--zero 3 with --freeze: the frozen embeddings are sharded apart from the trained shards (gathered, never reduced)', async () => {
    // Full weights under Adam: a smaller step than the adapters' keeps float-order differences below 1e-5.
    const freeze: Partial<TrainConfig> = { freeze: 'transformer.wte.weight,transformer.wpe.weight', lr: 1e-3 };
    const one = await train(config(freeze), data, new LocalStrategy());
    const ranks = await twoRanks(config({ ...freeze, batchSize: 4 }), (g) => new ZeroStrategy(g, { stage: 3, checksumEvery: 0 }));
    assertSameTraining(ranks[0].model, one, '--zero 3 --freeze');
    assertBaseSharded(ranks, one.model, 4);
  });

  it('--zero 3 with the base held in bf16: the adapted weights\' shards are bf16 (half the bytes), one bf16-base process\'s adapters within BF16_TRAINED (6 × 2⁻⁹), the same PEFT folder', async () => {
    const bf16: Partial<TrainConfig> = { ...LORA, loraBaseDtype: 'bf16' };
    const one = await train(config(bf16), data, new LocalStrategy());
    const ranks = await twoRanks(config({ ...bf16, batchSize: 4 }), (g) => new ZeroStrategy(g, { stage: 3, checksumEvery: 0 }));
    const fp32 = await twoRanks(config({ ...LORA, batchSize: 4 }), (g) => new ZeroStrategy(g, { stage: 3, checksumEvery: 0 }));
    const adapted = loraLayers(one.model).reduce((n, [, l]) => n + l.weight.size, 0);
    const held = (rs: typeof ranks): number => rs.reduce((n, r) => n + (r.strategy as ZeroStrategy).frozenShardBytes(), 0);
    // The adapted weights' 4 bytes a value become 2 (a padding value at most per tensor).
    const saved = held(fp32) - held(ranks);
    assert.ok(saved >= 2 * adapted - 2 * loraLayers(one.model).length && saved <= 2 * adapted, `bf16 shards save ${saved} bytes of ${4 * adapted}`);
    // Gathered whole on rank 0 for --save: bf16, the values one process rounded.
    for (const [[name, l], [, m]] of loraLayers(ranks[0].model).map((e, i) => [e, loraLayers(one.model)[i]] as const)) {
      assert.equal(l.weight.dtype, 'bfloat16', name);
      assert.deepEqual(l.weight.values(), m.weight.values(), `${name}: the bf16 base one process holds`);
    }
    // As under --zero 2: bf16 matmuls round at each rank's own loss scale (half the batch).
    const d = trainedDiff(ranks[0].model, one.model, 'zero3 bf16 base');
    assert.ok(d < BF16_TRAINED, `--zero 3 against one process, both with a bf16 base: ${d}`);
    await assertSameFolderWithin(ranks[0].model, one, 'zero3-bf16', BF16_TRAINED);
  });

  it('tensor parallelism refuses LoRA and --freeze by flag before it builds anything', async () => {
    const [g] = createInProcessTransports(1, { timeoutMs: 1000 }).map((t) => new ProcessGroup(t));
    const tp = (): TensorParallelStrategy => new TensorParallelStrategy(g, 1, (dp) => new AllReduceStrategy(dp));
    await assert.rejects(train(config(LORA), data, tp()), /--lora-rank\): the allreduce\+tp1 strategy builds and shards the model itself/);
    await assert.rejects(train(config({ freeze: 'transformer.wte.weight' }), data, tp()), /--freeze\): .*use data parallelism \(allreduce\), --zero 1\|2\|3 or --pipeline-stages/);
  });

  it('pipeline stages: each stage trains its layers\' adapters as one process does; the whole model on rank 0 saves the same PEFT folder', async () => {
    const one = await single;
    const ranks = await twoRanks(config(LORA), (g) => new PipelineStrategy(g, { stages: 2, microBatches: 2, schedule: '1f1b' }, (dp) => new AllReduceStrategy(dp, { checksumEvery: 0 })));
    const [whole] = await Promise.all(ranks.map((r) => r.strategy.modelBuilder!.savedModel!(r.model, r.spec)));
    assert.ok(whole);
    assertSameTraining(whole, one, 'pipeline');
    await assertSameFolder(whole, one, 'pipeline');
  });

  it('pipeline stages with the base held in bf16: rank 0\'s whole model for --save holds the bf16 base (widened exactly), one bf16-base process\'s adapters within BF16_TRAINED (6 × 2⁻⁹), the same merge', async () => {
    const bf16: Partial<TrainConfig> = { ...LORA, loraBaseDtype: 'bf16' };
    const one = await train(config(bf16), data, new LocalStrategy());
    const ranks = await twoRanks(config(bf16), (g) => new PipelineStrategy(g, { stages: 2, microBatches: 2, schedule: '1f1b' }, (dp) => new AllReduceStrategy(dp, { checksumEvery: 0 })));
    const [whole] = await Promise.all(ranks.map((r) => r.strategy.modelBuilder!.savedModel!(r.model, r.spec)));
    assert.ok(whole);
    const base = new Map<string, Float32Array>(await Promise.all(loraLayers(one.model).map(async ([name, l]): Promise<[string, Float32Array]> => [`${name}.weight`, await readParameterFloat32(l.weight)])));
    for (const [name, p] of whole.namedParameters()) {
      const want = base.get(name);
      if (want) assert.deepEqual(await readParameterFloat32(p), want, `${name}: the bf16 base one process holds`);
    }
    const d = trainedDiff(whole, one.model, 'pipeline bf16 base');
    assert.ok(d < BF16_TRAINED, `pipeline against one process, both with a bf16 base: ${d}`);
    await assertSameFolderWithin(whole, one, 'pipeline-bf16', BF16_TRAINED);
    // --merge-lora's folder: W + scaling·BA from the whole model, as one process merges its own.
    const [mine, theirs] = await Promise.all([mergeLora(whole, one.spec), mergeLora(one.model, one.spec)]);
    const flat = (m: Module): Float32Array => Float32Array.from(m.namedParameters().flatMap(([, p]) => Array.from(p.values() as Float32Array)));
    assert.ok(maxRelDiff(flat(mine), flat(theirs)) < BF16_TRAINED, `merged: ${maxRelDiff(flat(mine), flat(theirs))}`);
  });
});
