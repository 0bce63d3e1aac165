/**
 * A GPT-2 and a llama-tiny (with Qwen2's biases and Qwen3's q/k norms, whose weight gradients are
 * summed over the group) with sharded layers on the webgpu device (SwiftShader where there is no GPU): the group
 * sums (tensor/group_sum.ts) read a GPU storage back, sum it over the group and write it back.
 * Two in-process ranks — both on the GPU, or one on the GPU beside one on the cpu — give each rank
 * the loss and the shard gradients of the same split run on the cpu (which model.test.ts shows equal
 * to one process). Skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ModelSpec } from '../../../src/nn/models/index.js';
import { gpt2Spec, llamaSpec } from '../../../src/nn/models/presets.js';
import { buildTensorParallelModel, groupReducer } from '../../../src/parallel/sharding/index.js';
import { backwardAsync } from '../../../src/tensor/autograd.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { makeWorld, onAll } from '../../comm/fixture.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';
import { maxRelDiff } from '../../helpers/cluster.js';

const VOCAB = 32;
const N = 2;
const T = 8;
const SEED = 5;
const SPECS: [string, ModelSpec][] = [
  ['GPT-2', gpt2Spec('gpt2-tiny', VOCAB, T, { width: 32, heads: 2, layers: 2 })],
  ['llama-tiny (q/k/v biases, q/k norms)', { ...llamaSpec('llama-tiny', VOCAB, T), qkvBias: true, qkNorm: true }],
];

function batch(): { ids: Tensor; labels: Int32Array } {
  let x = 12345;
  const next = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % VOCAB;
  return { ids: Tensor.fromHost(Float32Array.from({ length: N * T }, next), [N, T]), labels: Int32Array.from({ length: N * T }, next) };
}

/** Each rank's loss and its whole gradient arena (read back from a GPU), rank r on devices[r]. */
async function split(spec: ModelSpec, devices: string[]): Promise<{ loss: number; grads: Float32Array }[]> {
  const world = await makeWorld('inproc', devices.length, { timeoutMs: 30_000 });
  try {
    return await onAll(world, async (pg, rank) => {
      const model = buildTensorParallelModel(spec, SEED, groupReducer(pg));
      if (devices[rank] !== 'cpu') model.to(devices[rank]);
      const { ids, labels } = batch();
      const loss = crossEntropy(await model.forwardAsync(ids), labels);
      await backwardAsync(loss);
      const grads = model.arena().grads;
      assert.equal(grads.device, devices[rank]);
      return { loss: (await loss.read())[0], grads: Float32Array.from(await grads.read()) };
    });
  } finally {
    await world.close();
  }
}

let load: WebGpuLoad;

describe('models with sharded layers on webgpu', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => closeWebGpu());

  for (const [name, spec] of SPECS) for (const devices of [['webgpu', 'webgpu'], ['webgpu', 'cpu']]) {
    it(`${name}, ranks on ${devices.join(' + ')}: each rank's loss and shard gradients are the cpu split run's (1e-5 relative)`, async (t) => {
      if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const want = await split(spec, ['cpu', 'cpu']);
      const got = await split(spec, devices);
      got.forEach((r, rank) => {
        assert.ok(Math.abs(r.loss - want[rank].loss) <= 1e-5 * Math.abs(want[rank].loss), `rank ${rank} loss ${r.loss} vs ${want[rank].loss}`);
        const err = maxRelDiff(r.grads, want[rank].grads);
        assert.ok(err <= 1e-5, `rank ${rank} (${devices[rank]}): gradients differ by ${err.toExponential(2)} relative`);
        process.stdout.write(`# ${name} ${devices.join('+')} rank ${rank}: gradients ${err.toExponential(2)} relative\n`);
      });
    });
  }
});
