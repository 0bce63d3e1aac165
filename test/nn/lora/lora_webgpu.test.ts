/**
 * LoRA on the webgpu device (SwiftShader without a GPU): the training loop moves the frozen base
 * and the adapters' arena to the GPU and trains to the cpu's parameters; a base held in bf16 is
 * refused there by flag (the device has no bf16 kernels). Opt-in (SMOLCLUSTER_LORA_WEBGPU=1): on
 * SwiftShader it costs about 40 s of CPU, more than the suite's budget allows a new test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadDataset } from '../../../src/data/load.js';
import { loraLayers } from '../../../src/nn/lora/index.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { backend, setBackend } from '../../../src/tensor/dispatch.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { train } from '../../../src/train/loop/loop.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { maxRelDiff } from '../../helpers/cluster.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const data = loadDataset({ name: 'synthetic_text', seed: 1, tokenTask: 'language-model', contextLength: 16 });
const config = (over: Partial<TrainConfig>): TrainConfig => ({
  ...defaultConfig('llama-tiny'), dataset: 'synthetic_text', context: 16, maxSteps: 1, evalEvery: 0, evalBatchSize: 16, batchSize: 2,
  loraRank: 4, loraTargets: ['q_proj', 'v_proj'], ...over,
});

let load: WebGpuLoad;
const previous = backend().name;

const OPT_IN = process.env.SMOLCLUSTER_LORA_WEBGPU === '1' ? false : 'opt-in: SMOLCLUSTER_LORA_WEBGPU=1 (about 40 s of CPU on SwiftShader)';

describe('LoRA on the webgpu device', { skip: OPT_IN }, () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
    setBackend('js');
  });
  after(() => {
    setBackend(previous);
    closeWebGpu();
  });

  it('a step on the GPU give the cpu\'s adapters; the frozen base lives on the GPU too', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const cpu = await train(config({}), data, new LocalStrategy());
    const gpu = await train(config({ device: 'webgpu' }), data, new LocalStrategy());
    assert.equal(gpu.model.arena().device, 'webgpu');
    assert.ok(gpu.model.namedParameters().every(([, p]) => p.device === 'webgpu'), 'every parameter, frozen or not, is a GPU storage');
    assert.equal(loraLayers(gpu.model).length, 4);
    const d = maxRelDiff(await gpu.model.arena().params.read() as Float32Array, cpu.model.arena().params.readSync());
    assert.ok(d < 1e-5, `adapters differ by ${d}`);
    await assert.rejects(train(config({ device: 'webgpu', loraBaseDtype: 'bf16' }), data, new LocalStrategy()), /--lora-base-dtype\): bf16 needs bf16 kernels, which the webgpu device has none of/);
  });
});
