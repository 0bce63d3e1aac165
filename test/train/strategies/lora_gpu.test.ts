/**
 * LoRA with a GPU worker (webgpu on SwiftShader here): a webgpu rank beside a cpu rank, over
 * in-process transports, under ZeRO-3 (the frozen base held whole on each rank's device, the
 * adapters sharded) and as a pipeline stage, trains the adapters of one cpu process within 1e-4;
 * the PEFT folder saved from the GPU rank's whole model holds them. Tiny GPT-2 (2 layers, width 16,
 * context 8). Skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { loadAdapter, readParameterFloat32, saveAdapter } from '../../../src/nn/lora/index.js';
import { createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { CPU } from '../../../src/tensor/storage.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainData, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { PipelineStrategy } from '../../../src/train/strategies/pipeline.js';
import type { Strategy } from '../../../src/train/strategies/strategy.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import { maxRelDiff, tempDir } from '../../helpers/cluster.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const DATA: TrainData = {
  train: syntheticText({ seed: 3, samples: 16, split: 'train', task: 'language-model', contextLength: 8, vocab: 32 }),
  test: syntheticText({ seed: 3, samples: 4, split: 'test', task: 'language-model', contextLength: 8, vocab: 32 }),
};
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...defaultConfig('gpt2-tiny'), layers: 2, width: 16, heads: 2, context: 8, dropout: 0, optimizer: 'adamw', lr: 0.01, maxSteps: 2,
  batchSize: 8, evalBatchSize: 4, evalEvery: 0, loraRank: 2, loraTargets: ['c_attn', 'c_fc'], ...over,
});

let load: WebGpuLoad;
const dir = tempDir('lora-gpu');
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => {
  closeWebGpu();
  rmSync(dir, { recursive: true, force: true });
});

/** Rank 0 on webgpu, rank 1 on the cpu, each running the loop with the strategy `make` builds. */
async function gpuBesideCpu(c: TrainConfig, make: (g: ProcessGroup) => Strategy): Promise<Array<TrainOutcome & { strategy: Strategy }>> {
  const groups = createInProcessTransports(2, { timeoutMs: 60_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 60_000 }));
  return Promise.all(groups.map(async (g) => {
    const strategy = make(g);
    return { ...(await train({ ...c, device: g.rank === 0 ? 'webgpu' : CPU }, DATA, strategy)), strategy };
  }));
}

/** The adapters' values by name, read from any device. */
async function adapters(m: Module): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, p] of m.namedTrainable()) out.set(n, await readParameterFloat32(p));
  return out;
}

async function assertAdaptersOf(got: Module, single: TrainOutcome, what: string): Promise<void> {
  const [a, b] = [await adapters(got), await adapters(single.model)];
  const names = [...b.keys()].sort();
  assert.deepEqual([...a.keys()].sort(), names);
  const flat = (m: Map<string, Float32Array>): Float32Array => Float32Array.from(names.flatMap((n) => Array.from(m.get(n)!)));
  const d = maxRelDiff(flat(a), flat(b));
  assert.ok(d < 1e-4, `${what}: adapters differ from one cpu process's by ${d}`);
}

describe('LoRA with a GPU worker (webgpu beside cpu)', () => {
  it('ZeRO-3 and a pipeline stage on the GPU train one cpu process\'s adapters; the saved PEFT folder holds them', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const single = await train(config(), DATA, new LocalStrategy());
    const zero = await gpuBesideCpu(config({ batchSize: 4 }), (g) => new ZeroStrategy(g, { stage: 3, checksumEvery: 0 }));
    assert.ok(zero[0].model.namedParameters().every(([, p]) => p.device === 'webgpu'), 'the GPU rank holds its base and gathered adapters there');
    await assertAdaptersOf(zero[0].model, single, '--zero 3, rank 0 on webgpu');
    // The folder the GPU rank saves, loaded onto a fresh cpu model: its adapters are the trained ones.
    await saveAdapter(dir, zero[0].model, single.spec);
    const loaded = createModel(single.spec, 0);
    loadAdapter(dir, loaded);
    await assertAdaptersOf(loaded, single, 'the saved folder');
    const pipe = await gpuBesideCpu(config(), (g) => new PipelineStrategy(g, { stages: 2, microBatches: 2, schedule: 'gpipe' }, (dp) => new AllReduceStrategy(dp, { checksumEvery: 0 })));
    assert.equal(pipe[0].model.arena().device, 'webgpu');
    const [whole] = await Promise.all(pipe.map((r) => r.strategy.modelBuilder!.savedModel!(r.model, r.spec)));
    await assertAdaptersOf(whole!, single, 'pipeline, stage 0 on webgpu');
  });
});
