/**
 * LoRA adapters as what --model names (model_source.ts, load_generator.ts): a LoRA run's checkpoint
 * (its arena: the adapters only) on the run's --init, scaled by the run's --lora-alpha (or its
 * --adapter folder's, or 2r), merged into a float base or unmerged over a GGUF file's, and a PEFT
 * folder on its base_model_name_or_path; the refusals.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadGenerator } from '../../src/generate/load_generator.js';
import { resolveModelSource } from '../../src/generate/model_source.js';
import { readTrainingState, saveCheckpoint } from '../../src/nn/checkpoint.js';
import { exportGguf } from '../../src/nn/interchange/gguf_export.js';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { applyLora, loraLayers, mergeLora, saveAdapter } from '../../src/nn/lora/index.js';
import { readCheckpointAdapter } from '../../src/nn/lora/checkpoint_adapter.js';
import { type LlamaSpec, createModel } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { SGD } from '../../src/nn/optim/sgd.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { writeByteTokenizer } from './byte_tokenizer.js';

const root = mkdtempSync(join(tmpdir(), 'smol-lora-sources-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
};
const base = join(root, 'base');
saveFolder(base, createModel(SPEC, 1), SPEC);

/** The base with rank-2 adapters of `alpha` on q and v, their A and B drawn (B nonzero: they change the model). */
function adapted(alpha: number): Module {
  const model = createModel(SPEC, 1);
  applyLora(model, { rank: 2, alpha, dropout: 0, targets: ['q_proj', 'v_proj'] });
  const rng = new Rng(9);
  for (const [, layer] of loraLayers(model)) {
    for (const w of [layer.lora_A.weight, layer.lora_B.weight]) w.storage.write(Float32Array.from({ length: w.size }, () => 0.3 * rng.normal()));
  }
  return model;
}

/** A run's folder whose config is `config` and whose one checkpoint holds `model`'s arena (its adapters). */
async function loraRun(name: string, config: Record<string, unknown>, model: Module): Promise<string> {
  const run = join(root, 'experiments', name);
  mkdirSync(join(run, 'checkpoints'), { recursive: true });
  writeFileSync(join(run, 'config.json'), JSON.stringify({ schema: 'smolcluster-config', schema_version: 1, dataset: 'synthetic_text', ...config }));
  const opt = new SGD(model.arena(), { lr: 0.1 });
  saveCheckpoint(join(run, 'checkpoints', 'ckpt-00000004.smolckpt'), model, SPEC, opt, {}, [], await readTrainingState(model, opt));
  return run;
}

function logits(model: Module): Float32Array {
  const ids = Tensor.fromHost(Int32Array.from({ length: 12 }, (_, i) => (i * 37 + 11) % 256), [1, 12]);
  return noGrad(() => Float32Array.from(model.forward(ids).values() as Float32Array));
}

/** Every parameter of `got` within 1e-6 of `want`'s. */
async function sameWeights(got: Module, want: Module): Promise<void> {
  const values = new Map(want.namedParameters());
  for (const [name, p] of got.namedParameters()) {
    const w = values.get(name)!.values() as Float32Array;
    const d = (p.values() as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - w[i])), 0);
    assert.ok(d < 1e-6, `${name} differs by ${d}`);
  }
}

describe('LoRA adapters as a model source', () => {
  it('a LoRA run\'s checkpoint merges into its --init at the run\'s alpha (--lora-alpha, else its --adapter folder\'s, else 2r)', async () => {
    const model = adapted(6);
    const run = await loraRun('alpha', { init: base, lora_rank: 2, lora_alpha: 6 }, model);
    const g = await loadGenerator(run);
    assert.equal(g.weights, join(run, 'checkpoints', 'ckpt-00000004.smolckpt'));
    assert.equal(g.base, base);
    await sameWeights(g.model, await mergeLora(model, SPEC));

    const twice = adapted(4);
    await sameWeights((await loadGenerator(await loraRun('default', { init: base, lora_rank: 2 }, twice))).model, await mergeLora(twice, SPEC));

    const folder = join(root, 'start');
    await saveAdapter(folder, adapted(3), SPEC, base);
    const started = adapted(3);
    await sameWeights((await loadGenerator(await loraRun('started', { init: base, adapter: folder }, started))).model, await mergeLora(started, SPEC));
  });

  it('an adapter folder: on its base_model_name_or_path, relative to the folder or to where we run', async () => {
    const folder = join(root, 'peft');
    const model = adapted(5);
    await saveAdapter(folder, model, SPEC, '../base');
    const r = resolveModelSource(folder);
    assert.deepEqual([r.kind, r.path, r.adapter], ['folder', join(folder, '..', 'base'), { kind: 'peft', dir: folder }]);
    await sameWeights((await loadGenerator(folder)).model, await mergeLora(model, SPEC));
  });

  it('a LoRA run over a GGUF --init: its checkpoint\'s adapters run unmerged over the file\'s weights', async () => {
    const gguf = join(root, 'base.gguf');
    await exportGguf(gguf, createModel(SPEC, 1), SPEC, { tokenizer: { json: writeByteTokenizer(root) } });
    const model = adapted(6);
    const g = await loadGenerator(await loraRun('gguf', { init: gguf, lora_rank: 2, lora_alpha: 6 }, model));
    assert.equal(g.base, gguf);
    assert.ok(g.model.namedParameters().some(([n]) => n === 'model.layers.0.self_attn.q_proj.lora_A.weight'), 'unmerged');
    const [got, want] = [logits(g.model), logits(await mergeLora(model, SPEC))];
    const largest = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const apart = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
    assert.ok(apart <= 1e-5 * largest, `${apart} apart (largest logit ${largest})`);
  });

  it('refuses a run without --init, a base that is adapters itself, a file of other parameters, and one rank\'s part', async () => {
    const orphan = await loraRun('orphan', { lora_rank: 2 }, adapted(4));
    assert.throws(() => resolveModelSource(orphan), /orphan: is a LoRA run without --init: its base model is nowhere on disk/);
    const first = join(root, 'first');
    await saveAdapter(first, adapted(4), SPEC, base);
    const second = join(root, 'second');
    await saveAdapter(second, adapted(4), SPEC, first);
    assert.throws(() => resolveModelSource(second), /second: its base .*first is itself LoRA adapters; merge them first/);
    const plain = join(root, 'plain.smolckpt');
    const m = createModel(SPEC, 2);
    const opt = new SGD(m.arena(), { lr: 0.1 });
    saveCheckpoint(plain, m, SPEC, opt, {}, [], await readTrainingState(m, opt));
    assert.throws(() => readCheckpointAdapter(plain), /plain\.smolckpt: holds no LoRA adapters/);
    // One rank's part of a ZeRO run's adapters is not the adapters.
    const shard = join(root, 'shard.smolckpt');
    const lora = adapted(4);
    const sgd = new SGD(lora.arena(), { lr: 0.1 });
    saveCheckpoint(shard, lora, SPEC, sgd, {}, [['zero.shard', Float32Array.of(3, 0, 2, 0, 64, 128)]], await readTrainingState(lora, sgd));
    assert.throws(() => readCheckpointAdapter(shard), /shard\.smolckpt: holds one rank's part of the adapters \(a ZeRO shard\).*--save DIR/);
  });
});
