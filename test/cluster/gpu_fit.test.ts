/**
 * A letters task on the GPU (SwiftShader on a machine without one): the same epochs as on the cpu,
 * the same early stop, a delta within float32 rounding of the cpu's; and federated averaging over
 * tasks alternating between the devices ends within a stated bound of the all-cpu weights. Skipped
 * when the backend cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildLettersModel, fitShard } from '../../src/cluster/letters_model.js';
import { defaultLettersDir, loadLetters, type LetterShard } from '../../src/data/letters.js';
import { closeWebGpu, WEBGPU, type WebGpuLoad } from '../../src/tensor/backends/webgpu/index.js';
import { CPU, type Device } from '../../src/tensor/storage.js';
import { loadWebGpuForTests } from '../helpers/webgpu.js';

let load: WebGpuLoad | null = null;
before(async () => {
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => closeWebGpu());

const data = loadLetters(defaultLettersDir());
const shards = data.train.slice(0, 4).map((s): LetterShard => ({ ...s, rows: 300, features: s.features.slice(0, 300 * 16), labels: s.labels.slice(0, 300) }));

function maxAbsDiff(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale };
}

/** FedAvg as the coordinator does it (equal weights, float64 sums, task order), task i on devices(i). */
async function fedavg(devices: (task: number) => Device, rounds: number): Promise<Float32Array> {
  const global = buildLettersModel(8, 3).arena().params.readSync().slice();
  for (let r = 0; r < rounds; r++) {
    const sum = new Float64Array(global.length);
    for (const [i, shard] of shards.entries()) {
      const { delta } = await fitShard({ hidden: 8, start: global, shard, epochs: 3, lr: 1e-4, device: devices(i) });
      for (let k = 0; k < sum.length; k++) sum[k] += delta[k] / shards.length;
    }
    for (let k = 0; k < global.length; k++) global[k] += sum[k];
  }
  return global;
}

describe('a letters task on the GPU', { timeout: 120_000 }, () => {
  it('trains the cpu task\'s epochs to a delta within float32 rounding of it', async (t) => {
    if (!load?.backend) return t.skip(load?.reason ?? 'no webgpu');
    const start = buildLettersModel(8, 0).arena().params.readSync().slice();
    const task = { hidden: 8, start, shard: data.train[0], epochs: 5, lr: 1e-4 };
    const cpu = await fitShard(task);
    const gpu = await fitShard({ ...task, device: WEBGPU });
    assert.equal(gpu.epochs, cpu.epochs);
    assert.equal(gpu.trainError, cpu.trainError);
    assert.ok(Math.abs(gpu.trainLoss - cpu.trainLoss) <= 1e-5 * cpu.trainLoss, `${gpu.trainLoss} against ${cpu.trainLoss}`);
    const { diff, scale } = maxAbsDiff(gpu.delta, cpu.delta);
    t.diagnostic(`max |delta gpu - delta cpu| = ${diff} (max |delta| ${scale})`);
    assert.ok(diff <= 1e-5 * scale, `deltas differ by up to ${diff} (max |delta| ${scale})`);
  });

  it('federated averaging over tasks alternating GPU / cpu ends within 1e-5 (relative) of the all-cpu weights', async (t) => {
    if (!load?.backend) return t.skip(load?.reason ?? 'no webgpu');
    const cpu = await fedavg(() => CPU, 3);
    const mixed = await fedavg((i) => (i % 2 === 0 ? WEBGPU : CPU), 3);
    const { diff, scale } = maxAbsDiff(mixed, cpu);
    t.diagnostic(`max |w mixed - w cpu| = ${diff} (max |w| ${scale})`);
    assert.ok(diff > 0, 'the devices round differently (else this test compares the cpu with itself)');
    assert.ok(diff <= 1e-5 * scale, `final weights differ by up to ${diff} (max |w| ${scale})`);
  });
});
