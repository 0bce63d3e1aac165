/**
 * Generation on the webgpu device: the same model moved to the GPU (`module.to('webgpu')`) decodes
 * with its KV cache there, and greedy generation gives the tokens it gives on the cpu (so do choices
 * sharing a prefill, their caches copied on the GPU, with the prompt's logprobs). On
 * SwiftShader when there is no GPU; skipped when the backend cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DecodeBatch, generateBatch } from '../../src/generate/batch.js';
import { Sequence } from '../../src/generate/sequence.js';
import { generate } from '../../src/generate/generate.js';
import { closeWebGpu, type WebGpuLoad } from '../../src/tensor/backends/webgpu/index.js';
import { setBackend } from '../../src/tensor/dispatch.js';
import { loadWebGpuForTests } from '../helpers/webgpu.js';
import { FAMILIES, randomModel } from './families.js';

let load: WebGpuLoad;

describe('generate on the webgpu device equals the cpu', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
    setBackend('js');
  });
  after(() => closeWebGpu());

  for (const [name, spec] of FAMILIES) {
    it(`${name}: 10 greedy tokens, the same on the GPU`, async (t) => {
      if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const model = randomModel(spec, 21);
      const prompt = [7, 3, 9, 1];
      const cpu = await generate(model, prompt, { maxNewTokens: 10 });
      model.to('webgpu');
      assert.equal(model.parameters()[0].device, 'webgpu');
      const gpu = await generate(model, prompt, { maxNewTokens: 10 });
      assert.deepEqual(gpu.ids, cpu.ids);
    });
  }

  it('a batch of prompts of different lengths decodes on the GPU as on the cpu (gpt2, llama GQA)', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    for (const [, spec] of [FAMILIES[0], FAMILIES[1]]) {
      const model = randomModel(spec, 22);
      const prompts = [[7, 3, 9, 1], [2], [5, 8, 13, 4, 6, 1]];
      const cpu = await generateBatch(model, prompts, { maxNewTokens: 6 });
      model.to('webgpu');
      const gpu = await generateBatch(model, prompts, { maxNewTokens: 6 });
      assert.deepEqual(gpu.map((r) => r.ids), cpu.map((r) => r.ids));
    }
  });

  it('choices sharing a prefill (the cache copied on the GPU) and prompt logprobs, as on the cpu', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const model = randomModel(FAMILIES[1][1], 24);
    const prompt = [7, 3, 9, 1, 4];
    const run = async (): Promise<Sequence[]> => {
      const choices = [1, 2, 3].map((seed) => new Sequence(prompt, { maxNewTokens: 6, temperature: 1, seed, promptLogprobs: 2 }));
      const batch = new DecodeBatch(model);
      await batch.joinAll(choices);
      while (batch.size > 0) for (const { sequence } of await batch.step()) if (sequence.stopped()) batch.leave(sequence);
      return choices;
    };
    const cpu = await run();
    model.to('webgpu');
    const gpu = await run();
    assert.deepEqual(gpu.map((s) => s.ids), cpu.map((s) => s.ids));
    gpu[0].promptLogprobs!.forEach((p, i) => {
      const want = cpu[0].promptLogprobs![i];
      assert.deepEqual(p.top.map((x) => x.id), want.top.map((x) => x.id));
      assert.ok(Math.abs(p.logprob - want.logprob) < 1e-4, `position ${i + 1}: ${p.logprob} against ${want.logprob}`);
    });
  });
});
