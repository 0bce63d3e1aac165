/**
 * The same math as TRL (issue 47, must-show 3): for identical prompts, completions, rewards and old /
 * reference log-probabilities, one GRPO step's advantages, loss, logged metrics and every parameter's
 * gradient here equal trl.GRPOTrainer's (trl 1.13, torch fp32; grpo_trl.py runs TRL's own
 * `_generate_and_score_completions` and `compute_loss` on a tiny random Llama it saved with
 * save_pretrained, which loadPretrained reads here). Each of grpo, dr_grpo, dapo and bnpo, β = 0 and
 * β > 0, ε_high ≠ ε_low, on- and off-policy, scale_rewards group, batch and none, prompts of two lengths
 * (TRL left-pads them), completions cut mid-way by an EOS, one without any, a reward TRL skips (None),
 * and a LoRA policy (a PEFT adapter: TRL trains the PeftModel, we the model with loadAdapter).
 * Within 1e-5 (loss: absolute; gradients: absolute, relative to their largest where it exceeds 1).
 * Skipped without a Python that has trl, except under CI with the venv present.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadPretrained } from '../../src/nn/interchange/hf_folder.js';
import { nameMapFor } from '../../src/nn/interchange/hf_names.js';
import { transpose2d } from '../../src/nn/interchange/model_io.js';
import { isAdapterParameter } from '../../src/nn/lora/names.js';
import { loadAdapter } from '../../src/nn/lora/peft.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { groupAdvantages, type ScaleRewards } from '../../src/rl/advantages.js';
import { completionBatch, type Rollout } from '../../src/rl/completions.js';
import { type LossType, grpoLoss } from '../../src/rl/grpo_loss.js';
import { tokenLogps } from '../../src/rl/token_logps.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import { Rng } from '../../src/util/rng.js';
import { findPython } from '../helpers/python.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/rl/grpo_trl.py');
const VENV = '/opt/torchvenv/bin/python';
const PYTHON = findPython([process.env.SMOLCLUSTER_PYTHON, VENV], ['torch', 'transformers', 'trl', 'datasets']);
if (!PYTHON && process.env.CI === 'true' && existsSync(VENV)) throw new Error(`${VENV} exists but has no torch, transformers, trl and datasets`);
const SKIP = PYTHON ? false : 'no Python with torch, transformers and trl (set SMOLCLUSTER_PYTHON or build /opt/torchvenv)';

const TOL = 1e-5;
const EOS = 2;
const PAD = 0;
const G = 3;
/** Two prompts of different lengths (TRL left-pads the shorter), three completions each (max length 6). */
const PROMPTS = [[1, 5, 9, 14], [1, 7, 3, 30, 41, 8]];
const COMPLETIONS = [
  [11, 12, 2, 17, 18, 19], // EOS mid-way, then tokens TRL cuts off
  [13, 14, 15, 16, 17, 20], // no EOS: cut by the length limit
  [2, 40, 41, 42, 43, 44], // EOS first
  [20, 21, 22, 23, 2, 0],
  [24, 25, 26, 27, 28, 29],
  [31, 32, 2, 33, 34, 35],
];
const ROLLOUTS: Rollout[] = COMPLETIONS.map((completion, i) => ({ prompt: PROMPTS[Math.floor(i / G)], completion }));

interface Case {
  lossType: LossType;
  beta: number;
  epsilon: number;
  epsilonHigh: number;
  scale: ScaleRewards;
  temperature: number;
  /** μ: 1 = on-policy (TRL uses the detached current log-probabilities), 2 = the given old ones. */
  iterations: 1 | 2;
  rewards: (number | null)[];
  /** use_bias_correction_kl (TRL's default true). */
  biasCorrectionKl?: boolean;
  /** The policy is the base plus the PEFT LoRA adapter grpo_trl.py made (only A and B train). */
  adapter?: boolean;
  /** Rollouts from a sampler (vLLM's importance sampling correction): a fixed per-token ratio weights the policy term. */
  importance?: boolean;
}

const REWARDS = [1, 0, 0.5, 0.2, 1, 0];
const base = { epsilon: 0.2, epsilonHigh: 0.28, scale: 'group' as ScaleRewards, temperature: 0.7, iterations: 2 as const, rewards: REWARDS };
const CASES: Record<string, Case> = {};
for (const lossType of ['grpo', 'dr_grpo', 'dapo', 'bnpo'] as LossType[]) {
  for (const beta of [0, 0.04]) CASES[`${lossType} β=${beta} off-policy`] = { ...base, lossType, beta };
}
CASES['dapo β=0 on-policy scale none'] = { ...base, lossType: 'dapo', beta: 0, scale: 'none', iterations: 1, temperature: 1 };
CASES['grpo β=0.1 on-policy scale batch'] = { ...base, lossType: 'grpo', beta: 0.1, scale: 'batch', iterations: 1 };
CASES['dapo β=0.04 off-policy, no KL bias correction'] = { ...base, lossType: 'dapo', beta: 0.04, biasCorrectionKl: false };
CASES['dapo β=0.04 off-policy, LoRA (PEFT adapter; only A and B train)'] = { ...base, lossType: 'dapo', beta: 0.04, adapter: true };
CASES['grpo β=0 on-policy, LoRA'] = { ...base, lossType: 'grpo', beta: 0, iterations: 1, adapter: true };
CASES['dapo β=0.04 off-policy, truncated importance sampling (TRL\'s vLLM correction)'] = { ...base, lossType: 'dapo', beta: 0.04, importance: true };
CASES['grpo β=0 on-policy, truncated importance sampling'] = { ...base, lossType: 'grpo', beta: 0, iterations: 1, importance: true };
CASES['dr_grpo β=0.04 scale none, ε symmetric, a skipped reward'] = { ...base, lossType: 'dr_grpo', beta: 0.04, scale: 'none', epsilon: 0.1, epsilonHigh: 0.1, rewards: [1, null, 0, 0.3, 0.3, 0.9] };

interface Theirs {
  advantages: number[];
  completion_mask: number[][];
  num_items_in_batch: number;
  loss: number;
  metrics: Record<string, number>;
  grads: Record<string, number[]>;
}

const dir = mkdtempSync(join(tmpdir(), 'smol-grpo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function python(args: string[]): unknown {
  const r = spawnSync(PYTHON!, [SCRIPT, ...args], { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `grpo_trl.py ${args[0]} failed: ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `grpo_trl.py ${args[0]} gave no RESULT line: ${r.stdout.slice(-2000)}`);
  return JSON.parse(line.slice('RESULT '.length));
}

/** Deterministic offsets around the policy's own log-probabilities: ratios on both sides of both clips. */
function offsets(values: ArrayLike<number>, seed: number, scale: number): number[] {
  const rng = new Rng(seed);
  return Array.from(values, (v) => v + scale * rng.normal());
}

const rowsOf = (flat: ArrayLike<number>, width: number): number[][] =>
  Array.from({ length: flat.length / width }, (_, r) => Array.from(flat).slice(r * width, (r + 1) * width));

describe('GRPO loss and gradients against trl.GRPOTrainer', { skip: SKIP }, () => {
  const folder = join(dir, 'tiny-llama');
  let model: Module;
  let lora: Module;
  let spec: ModelSpec;
  let theirs: Record<string, Theirs>;
  let old: number[];
  let ref: number[];
  let importance: Float32Array;
  const batch = completionBatch(ROLLOUTS, EOS, PAD);
  const prompts = ROLLOUTS.map((r) => r.prompt);

  before(async () => {
    python(['make', folder]);
    ({ model, spec } = await loadPretrained(folder));
    model.train(false);
    lora = (await loadPretrained(folder)).model;
    loadAdapter(join(folder, 'adapter'), lora);
    lora.train(false);
    const current = noGrad(() => tokenLogps(model, prompts, batch, 0.7).logps.values());
    old = offsets(current, 1, 0.3);
    ref = offsets(current, 2, 0.5);
    // Ratios as importanceWeights' token_truncate mode leaves them: in (0, 3], padding 1.
    importance = Float32Array.from(batch.mask, (m, i) => (m ? Math.fround(0.3 + 2.7 * ((i * 0.618) % 1)) : 1));
    const cases = Object.fromEntries(Object.entries(CASES).map(([name, c]) => [name, {
      prompts, completions: COMPLETIONS, num_generations: G, rewards: c.rewards, max_completion_length: 6, temperature: c.temperature,
      beta: c.beta, epsilon: c.epsilon, epsilon_high: c.epsilonHigh, loss_type: c.lossType, scale_rewards: c.scale, num_iterations: c.iterations,
      use_bias_correction_kl: c.biasCorrectionKl ?? true,
      adapter: c.adapter ?? false,
      old_logps: c.iterations === 2 ? rowsOf(old, batch.width) : null, ref_logps: c.beta > 0 ? rowsOf(ref, batch.width) : null,
      importance_sampling_ratio: c.importance ? rowsOf(importance, batch.width) : null,
    }]));
    const file = join(dir, 'cases.json');
    writeFileSync(file, JSON.stringify(cases));
    theirs = python(['cases', folder, file]) as Record<string, Theirs>;
  });

  for (const [name, c] of Object.entries(CASES)) {
    it(name, async () => {
      const t = theirs[name];
      assert.deepEqual(rowsOf(batch.mask, batch.width), t.completion_mask, 'the completion mask (cut after the first EOS)');
      const adv = groupAdvantages(c.rewards.map((r) => r ?? NaN), G, c.scale).advantages;
      const advDiff = maxAbsDiff(adv, t.advantages);
      assert.ok(advDiff <= 1e-6, `advantages differ by ${advDiff}: ${Array.from(adv)} vs TRL ${t.advantages}`);

      const policy = c.adapter ? lora : model;
      policy.zeroGrad();
      const { logps, entropies } = tokenLogps(policy, prompts, batch, c.temperature);
      const { loss, metrics } = await grpoLoss(logps, {
        mask: batch.mask, advantages: adv, oldLogps: c.iterations === 2 ? old : null, refLogps: c.beta > 0 ? ref : null, entropies: entropies.values(),
        importanceWeights: c.importance ? importance : null,
      }, { lossType: c.lossType, beta: c.beta, useBiasCorrectionKl: c.biasCorrectionKl ?? true, epsilon: c.epsilon, epsilonHigh: c.epsilonHigh, maxCompletionLength: 6, dapoTokens: t.num_items_in_batch });
      const ours = loss.item();
      backward(loss);
      const lossDiff = Math.abs(ours - t.loss);
      const gradDiff = worstGradient(ourGrads(policy, spec), t.grads);
      console.log(`${name}: loss ${ours} vs TRL ${t.loss} (|Δ| ${lossDiff.toExponential(2)}); worst gradient ${gradDiff.name} |Δ| ${gradDiff.diff.toExponential(2)} (scale ${gradDiff.scale.toExponential(2)})`);
      assert.ok(lossDiff <= TOL, `${name}: loss ${ours} vs TRL ${t.loss}`);
      assert.ok(gradDiff.diff <= TOL * Math.max(1, gradDiff.scale), `${name}: gradient of ${gradDiff.name} differs by ${gradDiff.diff}`);
      assert.ok(gradDiff.scale > 1e-4, `${name}: the gradients are not all ~0 (a test that could not fail otherwise)`);

      const expect: [string, number][] = [
        ['clip_ratio/low_mean', metrics.clipRatioLowMean], ['clip_ratio/high_mean', metrics.clipRatioHighMean], ['clip_ratio/region_mean', metrics.clipRatioRegionMean],
        ['clip_ratio/low_min', metrics.clipRatioLowMin], ['clip_ratio/high_max', metrics.clipRatioHighMax], ['entropy', metrics.entropy],
      ];
      if (c.beta > 0) expect.push(['kl', metrics.kl]);
      for (const [key, value] of expect) assert.ok(Math.abs(value - t.metrics[key]) <= TOL, `${name}: ${key} ${value} vs TRL ${t.metrics[key]}`);
      if (c.iterations === 2) assert.ok(t.metrics['clip_ratio/region_mean'] > 0, `${name}: some tokens are clipped (the clip is exercised)`);
    });
  }
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths');
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Every trained parameter's gradient under its Hugging Face name and layout (a LoRA matrix: its module's name, as PEFT's layers have it). */
function ourGrads(model: Module, spec: ModelSpec): Record<string, number[]> {
  const names = nameMapFor(spec);
  const grads: Record<string, number[]> = {};
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const g = Float32Array.from(p.gradValues() ?? new Float32Array(p.size));
    if (isAdapterParameter(name)) {
      grads[name] = Array.from(g);
      continue;
    }
    grads[names.external(name)] = Array.from(names.transposed(name) ? transpose2d(g, p.shape[0], p.shape[1]) : g);
  }
  return grads;
}

/** The parameter whose gradient differs most from TRL's, the difference, and the largest gradient element over all. */
function worstGradient(ours: Record<string, number[]>, ref: Record<string, number[]>): { name: string; diff: number; scale: number } {
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(ref).sort(), 'the same parameters have gradients');
  let worst = { name: '', diff: -1, scale: 0 };
  for (const name of Object.keys(ref)) {
    const diff = maxAbsDiff(ours[name], ref[name]);
    const scale = Math.max(worst.scale, ...ref[name].map(Math.abs));
    worst = diff > worst.diff ? { name, diff, scale } : { ...worst, scale };
  }
  return worst;
}
