/**
 * LoRA adapters against PEFT itself (peft_reference.py, torch 2.13 venv, one Python process for the
 * file): the adapter folder we write loads with `PeftModel.from_pretrained` onto the base folder and
 * gives our logits within 1e-4; one PEFT wrote (get_peft_model + save_pretrained) loads here with its
 * logits; and the merged Hugging Face folder (--merge-lora) gives the same logits in transformers.
 * GPT-2 (Conv1D in transformers: fan_in_fan_out) and a grouped-query Llama with q/k/v/o targets.
 * Skipped without a Python with transformers, except under CI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { loadFolderWeights } from '../../../src/nn/interchange/model_io.js';
import { applyLora, loadAdapter, loraLayers, mergeLora, saveAdapter } from '../../../src/nn/lora/index.js';
import { type LlamaSpec, type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { PYTHON, SKIP } from '../interchange/hf_transformers.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../test/nn/lora/peft_reference.py');
const PEFT_SKIP = SKIP || (spawnSync(PYTHON!, ['-c', 'import peft'], { encoding: 'utf8' }).status === 0 ? false : `${PYTHON} cannot import peft`);
if (PEFT_SKIP && !SKIP && process.env.CI === 'true') throw new Error(String(PEFT_SKIP));

const dir = mkdtempSync(join(tmpdir(), 'smol-peft-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const GPT2: ModelSpec = { type: 'gpt2', vocabSize: 61, context: 16, layers: 2, width: 32, heads: 4, dropout: 0 };
const LLAMA: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 61, context: 64, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 1e5, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
};
const CASES: [string, ModelSpec, string[]][] = [['gpt2', GPT2, ['c_attn', 'c_proj']], ['llama', LLAMA, ['q_proj', 'k_proj', 'v_proj', 'o_proj']]];
const INPUT = { x: Array.from({ length: 2 * 7 }, (_, i) => (i * 13 + 5) % 61), shape: [2, 7] };

/** Every value moved off its start by N(0, `std`) (B leaves zero, so the adapter changes the logits). */
function perturb(named: [string, Tensor][], seed: number, std: number): void {
  const rng = new Rng(seed);
  for (const [, p] of named) p.storage.write(Float32Array.from(p.values() as Float32Array, (v) => v + std * rng.normal()));
}

function logitsOf(model: Module): Float32Array {
  model.train(false);
  return Float32Array.from(model.forward(Tensor.from(INPUT.x, INPUT.shape)).values() as Float32Array);
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (s = Math.max(s, Math.abs(b[i])));
  return d / s;
}

interface Made {
  base: string;
  adapter: string;
  merged: string;
  theirs: string;
  ours: Float32Array;
  plain: Float32Array;
}

describe('LoRA adapters as PEFT folders (peft_reference.py)', { skip: PEFT_SKIP, timeout: 300_000 }, () => {
  const made = new Map<string, Made>();
  let results: { logits: number[] }[] = [];

  before(async () => {
    const jobs: object[] = [];
    for (const [name, spec, targets] of CASES) {
      const base = join(dir, `${name}-base`);
      const model = createModel(spec, 1);
      perturb(model.namedParameters(), 2, 0.05);
      saveFolder(base, model, spec);
      const plain = logitsOf(model);
      applyLora(model, { rank: 4, alpha: 8, dropout: 0, targets, seed: 3 });
      perturb(model.namedTrainable(), 4, 0.05);
      const ours = logitsOf(model);
      const adapter = join(dir, `${name}-adapter`);
      await saveAdapter(adapter, model, spec, base);
      const merged = join(dir, `${name}-merged`);
      saveFolder(merged, await mergeLora(model, spec), spec);
      const theirs = join(dir, `${name}-theirs`);
      made.set(name, { base, adapter, merged, theirs, ours, plain });
      jobs.push({ kind: 'adapter', base, adapter, ...INPUT }, { kind: 'plain', base: merged, ...INPUT });
      jobs.push({ kind: 'make', base, out: theirs, r: 2, alpha: 5, targets: targets.slice(0, 2), seed: 7, ...INPUT });
    }
    const file = join(dir, 'jobs.json');
    writeFileSync(file, JSON.stringify(jobs));
    const r = spawnSync(PYTHON!, [SCRIPT, file], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, `peft_reference.py failed: ${r.stderr}`);
    results = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { logits: number[] }[];
  });

  CASES.forEach(([name, spec, targets], i) => {
    it(`${name}: our adapter folder in PEFT gives our logits (1e-4), and they differ from the base's`, () => {
      const m = made.get(name)!;
      const config = JSON.parse(readFileSync(join(m.adapter, 'adapter_config.json'), 'utf8'));
      assert.deepEqual([config.peft_type, config.r, config.lora_alpha, config.target_modules, config.fan_in_fan_out], ['LORA', 4, 8, targets, spec.type === 'gpt2']);
      assert.ok(maxRel(m.ours, m.plain) > 1e-3, 'the adapter changes the logits');
      const d = maxRel(results[3 * i].logits, m.ours);
      assert.ok(d < 1e-4, `PEFT's logits differ by ${d.toExponential(2)} relative`);
    });

    it(`${name}: the merged folder (--merge-lora) in transformers gives the adapted logits (1e-4)`, () => {
      const d = maxRel(results[3 * i + 1].logits, made.get(name)!.ours);
      assert.ok(d < 1e-4, `the merged model's logits differ by ${d.toExponential(2)} relative`);
    });

    it(`${name}: an adapter PEFT saved loads here with PEFT's logits (1e-4)`, () => {
      const m = made.get(name)!;
      assert.ok(existsSync(join(m.theirs, 'adapter_model.safetensors')));
      const model = createModel(spec, 9);
      loadFolderWeights(m.base, model, spec);
      const config = loadAdapter(m.theirs, model);
      assert.deepEqual([config.rank, config.alpha], [2, 5]);
      assert.equal(loraLayers(model).length, 2 * (spec.type === 'gpt2' ? 3 : 2), 'both targets of each of the 2 layers wrapped (GPT-2: c_proj of attention and MLP)');
      const d = maxRel(logitsOf(model), results[3 * i + 2].logits);
      assert.ok(d < 1e-4, `our logits with PEFT's adapter differ by ${d.toExponential(2)} relative`);
    });
  });
});
