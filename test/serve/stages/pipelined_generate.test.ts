/**
 * Generation across pipeline stages (one process here, real TCP sockets on 127.0.0.1 between the
 * stages): greedy and sampled tokens equal one process's, for GPT-2 and a Llama with grouped kv
 * heads, over 2 and 3 stages, batched prompts of different lengths pipelined in groups; each
 * stage holds only its own layers' weights, read by name from a safetensors file, with a PEFT
 * adapter's update merged into them when one is given.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StoreServer } from '../../../src/comm/store/server.js';
import { generate } from '../../../src/generate/generate.js';
import { saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import { BatchScheduler } from '../../../src/serve/scheduler.js';
import { PipelinedBatch } from '../../../src/serve/stages/pipelined_batch.js';
import { generateAcross } from '../../../src/serve/stages/pipelined_generate.js';
import { joinStages, stageSignature } from '../../../src/serve/stages/stage_cluster.js';
import { placeGeneration } from '../../../src/serve/stages/stage_placement.js';
import { heldBytes } from '../../../src/parallel/pipeline/stage_weights.js';
import { deferredLayers, loadStage } from '../../../src/serve/stages/stage_model.js';
import { applyLora, defaultLoraTargets, loraLayers, mergeAdapterInto, saveAdapter } from '../../../src/nn/lora/index.js';
import type { HostArray } from '../../../src/tensor/storage.js';
import { Rng } from '../../../src/util/rng.js';
import { FAMILIES, randomModel } from '../../generate/families.js';
import { TOKEN, startStages } from './start_stages.js';

const sameValues = (a: HostArray, b: HostArray): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

const dir = mkdtempSync(join(tmpdir(), 'smol-stages-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PROMPTS = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5, 8, 9, 7], [2]];

describe('generation across pipeline stages', { timeout: 120_000 }, () => {
  for (const [name, spec] of [FAMILIES[0], FAMILIES[1]]) {
    for (const P of [2, 3]) {
      it(`${name}, ${P} stages: the same tokens as one process (greedy and sampled), each stage holding only its layers`, async () => {
        const model = randomModel(spec, 11);
        const file = join(dir, `${spec.type}-${P}.safetensors`);
        saveSafetensors(file, model, spec);
        const stages = await startStages(spec, { file }, P);
        try {
          const greedy = await generateAcross(stages.driver, PROMPTS, { maxNewTokens: 6 });
          for (const [i, p] of PROMPTS.entries()) assert.deepEqual(greedy[i].ids, (await generate(model, p, { maxNewTokens: 6 })).ids, `prompt ${i}`);
          // The last stage samples with every option, OpenAI's penalties and logit bias among them.
          const sampling = { maxNewTokens: 5, temperature: 0.9, topK: 20, seed: 7, repetitionPenalty: 1.2, presencePenalty: 0.5, frequencyPenalty: 0.3, logitBias: [[3, 2]] as [number, number][] };
          const sampled = await generateAcross(stages.driver, PROMPTS.slice(0, 2), sampling);
          for (const [i, p] of PROMPTS.slice(0, 2).entries()) {
            assert.deepEqual(sampled[i].ids, (await generate(model, p, sampling)).ids, `sampled prompt ${i}`);
          }
          // Each stage's parameters are its layers' only: together one model's (a tied weight counted on both of its stages).
          const names = stages.joined.map((j) => j.stage.namedParameters().map(([n]) => n));
          const all = new Set(model.namedParameters().map(([n]) => n));
          for (const stageNames of names) {
            assert.ok(stageNames.length < all.size, 'a stage holds fewer parameters than the model');
            for (const n of stageNames) assert.ok(all.has(n), `${n} is one of the model's`);
          }
          assert.deepEqual(new Set(names.flat()), all);
          // A leave travels down the pipe behind the last step: every stage frees its rows soon after.
          for (const end = Date.now() + 5000; stages.joined.some((j) => j.rows.size > 0) && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
          assert.deepEqual(stages.joined.map((j) => j.rows.size), new Array(P).fill(0), 'every row left every stage');
        } finally {
          await stages.close();
        }
      });
    }
  }

  it('prompts of one length are prefilled together (one pass down the pipe), and tokens stay one process\'s', async () => {
    const [, spec] = FAMILIES[1];
    const model = randomModel(spec, 3);
    const file = join(dir, 'grouped.safetensors');
    saveSafetensors(file, model, spec);
    const stages = await startStages(spec, { file }, 2);
    const prompts = [[3, 1, 4], [9, 2, 6], [5], [2, 7, 1]];
    // Stage 0's forwards of rows it has not seen: the prefills.
    const prefills: number[] = [];
    const seen = new Set<number>();
    const rows = stages.joined[0].rows;
    const forward = rows.forward.bind(rows);
    rows.forward = (input, ids) => {
      if (ids.some((r) => !seen.has(r))) prefills.push(ids.length);
      ids.forEach((r) => seen.add(r));
      return forward(input, ids);
    };
    try {
      const greedy = await generateAcross(stages.driver, prompts, { maxNewTokens: 5 });
      for (const [i, p] of prompts.entries()) assert.deepEqual(greedy[i].ids, (await generate(model, p, { maxNewTokens: 5 })).ids, `prompt ${i}`);
      assert.deepEqual(prefills, [3, 1], 'the three 3-token prompts in one prefill, the 1-token one alone');
    } finally {
      await stages.close();
    }
  });

  it('bf16 over 2 stages (each stage casts its own weights once): the same greedy tokens as one bf16 process', async () => {
    const [, spec] = FAMILIES[1];
    // A seed whose bf16 tokens part from fp32's within 16 tokens: equal tokens show bf16 really ran on the stages.
    const model = randomModel(spec, 23);
    const file = join(dir, 'bf16.safetensors');
    saveSafetensors(file, model, spec);
    const stages = await startStages(spec, { file }, 2, { precision: 'bf16' });
    try {
      const greedy = await generateAcross(stages.driver, PROMPTS, { maxNewTokens: 16 });
      let partsFromFp32 = false;
      for (const [i, p] of PROMPTS.entries()) {
        assert.deepEqual(greedy[i].ids, (await generate(model, p, { maxNewTokens: 16, precision: 'bf16' })).ids, `prompt ${i}`);
        partsFromFp32 ||= greedy[i].ids.join() !== (await generate(model, p, { maxNewTokens: 16 })).ids.join();
      }
      assert.ok(partsFromFp32, 'bf16 tokens equal fp32 tokens for every prompt: the stages may not have run bf16');
    } finally {
      await stages.close();
    }
  });

  it('a base model plus a PEFT adapter over 2 stages: each stage merges its own layers\' A and B, the tokens one process gives with the adapter merged', async () => {
    const [, spec] = FAMILIES[1];
    const file = join(dir, 'adapted-base.safetensors');
    saveSafetensors(file, randomModel(spec, 13), spec);
    // An adapter with a B far from PEFT's zeros, so merging it moves the weights (and the tokens).
    const tuned = randomModel(spec, 13);
    applyLora(tuned, { rank: 4, alpha: 8, dropout: 0, targets: defaultLoraTargets(spec), seed: 3 });
    const rng = new Rng(9);
    for (const [, l] of loraLayers(tuned)) l.lora_B.weight.storage.write(Float32Array.from({ length: l.lora_B.weight.size }, () => rng.normal() * 0.5));
    const folder = join(dir, 'adapter');
    await saveAdapter(folder, tuned, spec);
    const base = randomModel(spec, 13);
    const merged = randomModel(spec, 13);
    await mergeAdapterInto(folder, merged);
    const stages = await startStages(spec, { file, adapter: folder }, 2);
    try {
      const want = new Map(merged.namedParameters());
      const unmerged = new Map(base.namedParameters());
      let adapted = 0;
      for (const j of stages.joined) {
        for (const [name, p] of j.stage.namedParameters()) {
          assert.deepEqual(p.values(), want.get(name)!.values(), `${name}: one process's merged weight`);
          if (!sameValues(p.values(), unmerged.get(name)!.values())) adapted++;
        }
      }
      assert.equal(adapted, loraLayers(tuned).length, 'every adapted weight, and only those, moved on its stage');
      const greedy = await generateAcross(stages.driver, PROMPTS, { maxNewTokens: 6 });
      const reference = await Promise.all(PROMPTS.map((p) => generate(merged, p, { maxNewTokens: 6 })));
      PROMPTS.forEach((_, i) => assert.deepEqual(greedy[i].ids, reference[i].ids, `prompt ${i}`));
      const plain = await Promise.all(PROMPTS.map((p) => generate(base, p, { maxNewTokens: 6 })));
      assert.ok(plain.some((r, i) => r.ids.join() !== reference[i].ids.join()), 'the adapter changes some tokens');
    } finally {
      await stages.close();
    }
    // A stage that merges another adapter (or none) is another model: refused at connect.
    assert.notEqual(stageSignature(spec, 'fp32', { file, adapter: folder }), stageSignature(spec, 'fp32', { file }));
  });

  it('the server\'s scheduler over 3 stages: requests joining while groups are in flight get one process\'s tokens', async () => {
    const [, spec] = FAMILIES[1];
    const model = randomModel(spec, 5);
    const file = join(dir, 'scheduled.safetensors');
    saveSafetensors(file, model, spec);
    const stages = await startStages(spec, { file }, 3);
    try {
      const scheduler = new BatchScheduler(stages.driver, { maxBatch: 4, queueTimeoutMs: 20_000 });
      let started!: () => void;
      const firstTokens = new Promise<void>((r) => (started = r));
      const first = scheduler.submit({ promptIds: PROMPTS[0], options: { maxNewTokens: 12 }, onToken: (_, s) => s.ids.length === 3 && started() });
      await firstTokens;
      const later = PROMPTS.slice(1).map((p, i) => scheduler.submit({ promptIds: p, options: { maxNewTokens: 6 + i } }));
      const results = await Promise.all([first, ...later]);
      for (const [i, p] of PROMPTS.entries()) assert.deepEqual(results[i].ids, (await generate(model, p, { maxNewTokens: i === 0 ? 12 : 5 + i })).ids, `request ${i}`);
    } finally {
      await stages.close();
    }
  });

  it('a stage that does not answer fails the step at its deadline, naming the late stage, and every later request at once', async () => {
    const spec = FAMILIES[0][1];
    const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN, worldSize: 2, signature: stageSignature(spec) });
    const joined = await Promise.all([0, 1].map((rank) => joinStages({
      spec, weights: { seed: 1 }, stages: 2, rank, masterHost: '127.0.0.1', masterPort: store.port, hostStore: false, token: TOKEN, timeoutMs: 20_000, maxBatch: 1,
    })));
    // Rank 1 joined but runs no stage loop: it never answers.
    const driver = new PipelinedBatch(joined[0].cluster.transport, joined[0].rows, { timeoutMs: 300 });
    try {
      const late = /pipeline: no tokens from the last stage \(stage 1, rank 1 at 127\.0\.0\.1:\d+\) or a stage before it within 0\.3 s/;
      await assert.rejects(generateAcross(driver, [[1, 2]], { maxNewTokens: 3 }), (e: Error & { status?: number }) => late.test(e.message) && e.status === 503);
      await assert.rejects(generateAcross(driver, [[3]], { maxNewTokens: 3 }), late);
    } finally {
      await driver.close();
      await Promise.all(joined.map((j) => j.cluster.close()));
      await store.close();
    }
  });

  it('a stage built from the seed holds the values a whole build holds, and only its own', () => {
    const spec = FAMILIES[0][1];
    const whole = new Map(createModel(spec, 4).namedParameters());
    const stage = loadStage(spec, 1, 2, { seed: 4 });
    for (const [name, p] of stage.namedParameters()) assert.deepEqual(p.values(), whole.get(name)!.values(), name);
    assert.ok(stage.namedParameters().length > 0 && stage.namedParameters().every(([n]) => n.startsWith('transformer.h.0.')));
  });

  it('placement gives a slower rank fewer layers and refuses layers that fit no rank, naming the stages', () => {
    const spec: ModelSpec = { type: 'gpt2', vocabSize: 61, context: 32, layers: 6, width: 32, heads: 4, dropout: 0 };
    const layers = deferredLayers(spec, 0);
    const even = placeGeneration(spec, layers, [{ msPerWeight: 1, memoryBytes: 1e9 }, { msPerWeight: 1, memoryBytes: 1e9 }], { maxBatch: 1, bytesOf: heldBytes(new Map()) });
    const slow = placeGeneration(spec, layers, [{ msPerWeight: 1, memoryBytes: 1e9 }, { msPerWeight: 3, memoryBytes: 1e9 }], { maxBatch: 1, bytesOf: heldBytes(new Map()) });
    const size = (p: typeof even, s: number): number => p.ranges[s][1] - p.ranges[s][0];
    assert.ok(size(slow, 1) < size(even, 1), `the slow rank gets ${size(slow, 1)} layers, ${size(even, 1)} at equal speed`);
    assert.throws(() => placeGeneration(spec, layers, [{ msPerWeight: 1, memoryBytes: 1000 }, { msPerWeight: 1, memoryBytes: 1000 }], { maxBatch: 1, bytesOf: heldBytes(new Map()) }), /do not fit in the memory of the 2 pipeline nodes/);
  });
});

