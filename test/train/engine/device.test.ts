/**
 * --device cpu|gpu|auto (train/engine/device.ts): cpu is the default and touches no GPU; gpu without an
 * adapter fails with one line naming the flag; auto falls back to the cpu without one, and never
 * takes a software adapter (SwiftShader here); `gpu` on a found adapter trains there, naming it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { resolveDevice } from '../../../src/train/engine/device.js';
import { closeWebGpu, webGpuOpened } from '../../../src/tensor/backends/webgpu/index.js';
import { runCliProcess } from '../../helpers/cluster.js';
import { SWIFTSHADER_ICD, loadWebGpuForTests } from '../../helpers/webgpu.js';

const TRAIN = ['train', '--model', 'mlp', '--dataset', 'synthetic-regression', '--max-steps', '1', '--experiments-dir'];

describe('--device', () => {
  after(closeWebGpu);
  it('cpu (the default) is the cpu, with nothing to say', async () => {
    for (const { device, note } of [await resolveDevice(), await resolveDevice('cpu')]) assert.deepEqual({ device, note }, { device: 'cpu', note: '' });
  });

  it('on SwiftShader: auto stays on the cpu (a software adapter), gpu takes the adapter and names it', async (t) => {
    const load = await loadWebGpuForTests();
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    if (!load.adapter?.software) return t.skip(`${load.backend.adapterName} is a hardware adapter: auto measures it against the cpu`);
    const auto = await resolveDevice('auto');
    assert.equal(auto.device, 'cpu');
    assert.match(auto.note, /--device auto: cpu \(.*swiftshader.* is a software adapter\)/i);
    const gpu = await resolveDevice('gpu');
    assert.equal(gpu.device, 'webgpu');
    assert.match(gpu.note, /--device gpu: training on .*swiftshader/i);
    auto.release();
    assert.equal(webGpuOpened(), true, 'a cpu decision closes no GPU that other code opened');
    gpu.release();
    assert.equal(webGpuOpened(), false, 'the GPU decision gives its device back');
  });

  it('without an adapter, `train --device gpu` fails with one line and `--device auto` trains on the cpu', async () => {
    const env = { VK_ICD_FILENAMES: '/nonexistent/icd.json' };
    const dir = `/tmp/smolcluster-device-test-${process.pid}`;
    const gpu = await runCliProcess([...TRAIN, dir, '--device', 'gpu'], { env, timeoutMs: 60_000 });
    assert.notEqual(gpu.code, 0);
    const lines = gpu.stderr.trim().split('\n').filter((l) => l.includes('--device'));
    assert.equal(lines.length, 1, gpu.stderr);
    assert.match(lines[0], /--device gpu: no WebGPU adapter found/);
    const auto = await runCliProcess([...TRAIN, dir, '--device', 'auto'], { env, timeoutMs: 120_000 });
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stderr, /--device auto: cpu \(no WebGPU adapter found/);
  });

  it('SwiftShader\'s ICD file is where the tests look for it', () => {
    assert.equal(SWIFTSHADER_ICD, '/usr/lib/chromium/vk_swiftshader_icd.json');
  });
});
