/**
 * `smolcluster grpo` end to end on a tiny random Llama folder with the byte tokenizer: a verifiable
 * reward (a user module: the share of lowercase letters in the completion) rises under GRPO; LoRA
 * with a reference (β > 0) and μ = 2 logs the KL and clip ratios and saves an adapter `generate`
 * loads; a reward that throws is named and scored as failed while the run goes on; bad flags and data
 * are refused by name. The loss's math against TRL is test/rl/grpo_loss.test.ts's.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { LlamaSpec } from '../../src/nn/models/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { randomModel } from '../generate/families.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 260, context: 32, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};

let dir = '';
before(() => {
  dir = tempDir('grpo-cli');
  saveFolder(join(dir, 'base'), randomModel(SPEC, 3), SPEC);
  // Room for the addition task's prompts (~45 bytes) and a completion.
  saveFolder(join(dir, 'long'), randomModel({ ...SPEC, context: 96 }, 3), { ...SPEC, context: 96 });
  writeFileSync(join(dir, 'prompts.jsonl'), Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}=`, answer: 2 * i })).join('\n'));
  writeFileSync(join(dir, 'lower.mjs'), 'export default (prompt, completion) => [...completion].filter((c) => c >= "a" && c <= "z").length / Math.max(1, completion.length);\n');
  writeFileSync(join(dir, 'flaky.mjs'), 'export default (prompt, completion, row) => { if (row.answer === 4) throw new Error("no score for this row"); return 1; };\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = ['grpo', '--model', 'base', '--tokenizer', 'bytes', '--data-file', 'prompts.jsonl', '--threads', '1', '--num-generations', '8', '--batch-size', '16', '--max-completion-length', '4'];

interface StepLine {
  step: number;
  reward: number;
  rewards: Record<string, number>;
  reward_failures: number;
  kl: number | null;
  clip_ratio: { region_mean: number };
  completions: { mean_length: number };
  rollout_tokens_per_sec: number;
  train_tokens_per_sec: number;
}

function steps(name: string): StepLine[] {
  return readFileSync(join(dir, 'experiments', name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StepLine);
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('smolcluster grpo', { timeout: 180_000 }, () => {
  it('raises a verifiable reward: the mean of the last 5 steps passes the first 5\'s by 0.3 or more', async () => {
    const r = await runCli([...BASE, '--reward', './lower.mjs', '--max-steps', '30', '--lr', '0.01', '--name', 'learns'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^grpo step 30\/30: reward \S+ ± \S+, loss \S+, kl –, completion length \S+, \d+ rollout tok\/s, \d+ train tok\/s$/m);
    const lines = steps('learns');
    assert.deepEqual(lines.map((l) => l.step), Array.from({ length: 30 }, (_, i) => i));
    const [first, last] = [mean(lines.slice(0, 5).map((l) => l.reward)), mean(lines.slice(-5).map((l) => l.reward))];
    assert.ok(last >= first + 0.3, `reward ${first.toFixed(3)} over the first 5 steps, ${last.toFixed(3)} over the last 5`);
    assert.ok(lines.every((l) => l.rollout_tokens_per_sec > 0 && l.train_tokens_per_sec > 0));
  });

  it('LoRA with a reference (β > 0) and μ = 2: the KL and clip ratios are logged, the adapter saved loads in generate', async () => {
    const r = await runCli([...BASE, '--reward', 'format:^[a-z]', '--reward', './lower.mjs', '--reward-weights', '1,0.5', '--max-steps', '3', '--lora-rank', '4',
      '--beta', '0.04', '--num-iterations', '2', '--epsilon-high', '0.28', '--lr', '0.05', '--name', 'lora', '--save', 'adapter'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = steps('lora');
    assert.equal(lines.length, 3);
    assert.ok(lines.every((l) => typeof l.kl === 'number' && l.kl >= 0), `kl: ${lines.map((l) => l.kl).join(', ')}`);
    assert.ok(lines.slice(1).some((l) => l.kl! > 0), 'the policy moved away from the reference');
    assert.deepEqual(Object.keys(lines[0].rewards).sort(), ['format', 'lower']);
    const config = JSON.parse(readFileSync(join(dir, 'adapter', 'adapter_config.json'), 'utf8')) as { r: number; peft_type: string };
    assert.deepEqual([config.peft_type, config.r], ['LORA', 4]);
    const g = await runCli(['generate', '--model', 'base', '--tokenizer', 'bytes', '--adapter', 'adapter', '--prompt', '1+1=', '--max-new-tokens', '3'], { cwd: dir });
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stderr, /3 tokens in/);
  });

  it('a reward that throws is named and scored as failed; the run goes on', async () => {
    const r = await runCli([...BASE, '--reward', './flaky.mjs', '--batch-size', '48', '--max-steps', '1', '--name', 'flaky'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /flaky.*no score for this row/);
    const [line] = steps('flaky');
    // Row 2 (answer 4) of the 6 prompts, sampled 8 times in the step's 6 prompts.
    assert.equal(line.reward_failures, 8);
    assert.equal(line.reward, 1);
  });

  it('--task addition: trains on its problems and scores the held-out ones greedily before, every --eval-every steps and after', async () => {
    const r = await runCli(['grpo', '--model', 'long', '--tokenizer', 'bytes', '--task', 'addition:1', '--task-size', '30', '--held-out', '10', '--reward', 'exact-number',
      '--threads', '1', '--num-generations', '4', '--batch-size', '8', '--max-completion-length', '6', '--max-steps', '4', '--eval-every', '2', '--name', 'task'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const evals = readFileSync(join(dir, 'experiments', 'task', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; prompts: number; rewards: Record<string, number> })
      .filter((l) => l.kind === 'grpo_eval');
    assert.deepEqual(evals.map((e) => [e.step, e.prompts]), [[0, 10], [2, 10], [4, 10]]);
    assert.ok(evals.every((e) => e.rewards['exact-number'] >= 0 && e.rewards['exact-number'] <= 1));
    assert.match(r.stdout, /held-out reward \d\.\d+ → \d\.\d+/);
    assert.match(r.stderr, /^grpo held-out after 2 steps: reward \S+ over 10 prompts \(exact-number \S+\)$/m);
  });

  it('task-data writes --task\'s training split for train, none of the held-out problems grpo evaluates on; train learns from it', async () => {
    const w = await runCli(['task-data', '--task', 'addition:1', '--task-size', '30', '--held-out', '10', '--seed', '4', '--out', 'sft.jsonl'], { cwd: dir });
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /^task-data: 30 training problems \(10 held out\) of addition:1, seed 4 → sft\.jsonl$/m);
    const h = await runCli(['task-data', '--task', 'addition:1', '--split', 'held-out', '--held-out', '10', '--seed', '4', '--out', 'held.jsonl'], { cwd: dir });
    assert.equal(h.code, 0, h.stderr);
    const read = (file: string): { prompt: string; completion: string; answer: number }[] => readFileSync(join(dir, file), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const [train, held] = [read('sft.jsonl'), read('held.jsonl')];
    assert.deepEqual([train.length, held.length], [30, 10]);
    assert.ok(train.every((r) => !held.some((x) => x.prompt === r.prompt)), 'a held-out problem in the training split');
    const t = await runCli(['train', '--model', 'llama-tiny', '--layers', '1', '--width', '32', '--heads', '2', '--dataset', 'text', '--data-file', 'sft.jsonl',
      '--tokenizer', 'bytes', '--optimizer', 'adamw', '--lr', '0.01', '--batch-size', '8', '--max-steps', '2', '--threads', '1', '--save', 'sft-model', '--name', 'sft'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(t.code, 0, t.stderr);
    // grpo starts from the model train saved; the held-out file serves as --eval-file (its rows carry the answer).
    const g = await runCli(['grpo', '--model', 'sft-model', '--task', 'addition:1', '--task-size', '30', '--held-out', '10', '--seed', '4', '--eval-file', 'held.jsonl',
      '--reward', 'exact-number', '--threads', '1', '--num-generations', '4', '--batch-size', '8', '--max-completion-length', '7', '--max-steps', '1', '--name', 'after-sft'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stderr, /^grpo held-out after 0 steps: reward \S+ over 10 prompts/m);
    const bad = await runCli(['task-data', '--task', 'addition:1', '--task-size', '95', '--out', 'x.jsonl'], { cwd: dir });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /addition:1 has 100 problems, fewer than 195 asked/);
  });

  it('refuses bad flags and data by name', async () => {
    const cases: [string[], RegExp][] = [
      [['--reward', 'exact-number', '--batch-size', '12'], /\(--batch-size\): 12 completions a step is not a multiple of --num-generations 8/],
      [['--reward', 'accuracy'], /--reward accuracy: not a reward/],
      [['--reward', 'exact-number', '--max-completion-length', '30'], /\(--max-completion-length\): prompt \d of prompts\.jsonl is \d+ tokens; with 30 more it passes the model's 32 positions/],
      [['--reward', 'exact-number', '--reward-weights', '1,2'], /--reward-weights: 2 weights for 1 rewards/],
      [[], /--reward: give at least one/],
      [['--reward', 'exact-number', '--task', 'addition'], /grpo takes its prompts from --data-file prompts\.jsonl .* or from --task addition \(one of them\)/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli([...BASE, ...args, '--max-steps', '1'], { cwd: dir });
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, message);
    }
    writeFileSync(join(dir, 'bad.jsonl'), '{"prompt": "1+1="}\n{"question": "x"}\n');
    const bad = await runCli([...BASE.map((a) => (a === 'prompts.jsonl' ? 'bad.jsonl' : a)), '--reward', 'exact-number'], { cwd: dir });
    assert.match(bad.stderr, /bad\.jsonl: line 2: "prompt" must be a text or a non-empty list/);
  });
});
