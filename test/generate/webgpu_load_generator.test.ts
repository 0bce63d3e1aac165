/**
 * loadGenerator({ device: 'gpu' }): the weights read on the cpu are written into a model placed on
 * the webgpu device (a loaded cpu arena cannot move), and it generates the cpu's greedy tokens. On
 * SwiftShader when there is no GPU; skipped when the backend cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generate } from '../../src/generate/generate.js';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { saveModel } from '../../src/nn/checkpoint.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { closeWebGpu, type WebGpuLoad } from '../../src/tensor/backends/webgpu/index.js';
import { loadWebGpuForTests } from '../helpers/webgpu.js';
import { randomModel } from './families.js';

const root = mkdtempSync(join(tmpdir(), 'smol-load-generator-gpu-'));
let load: WebGpuLoad;

describe('loadGenerator on the webgpu device', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => {
    closeWebGpu();
    rmSync(root, { recursive: true, force: true });
  });

  it('places a loaded model on the GPU and generates the cpu\'s tokens', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const spec: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 32, layers: 1, width: 16, heads: 2, dropout: 0 };
    const file = join(root, 'm.smol');
    await saveModel(file, randomModel(spec, 4), spec);
    const cpu = await loadGenerator(file);
    const gpu = await loadGenerator(file, { device: 'gpu' });
    assert.equal(gpu.model.parameters()[0].device, 'webgpu');
    const prompt = [104, 105];
    assert.deepEqual((await generate(gpu.model, prompt, { maxNewTokens: 6 })).ids, (await generate(cpu.model, prompt, { maxNewTokens: 6 })).ids);
  });
});
