/**
 * `smolcluster grpo --rollout-workers N` end to end: real `rollout-worker` processes on 127.0.0.1,
 * authenticated over real sockets, weights sent after every step. Synchronous mode samples what the
 * in-process run samples (the same seeds, the same kernels at the same weights), so the figures
 * equal the in-process run's step by step — for full fine-tuning (every trainable weight sent) and
 * under LoRA (the adapters alone). A worker started with another LoRA shape is refused by name.
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
  dir = tempDir('grpo-rollout');
  saveFolder(join(dir, 'base'), randomModel(SPEC, 3), SPEC);
  writeFileSync(join(dir, 'prompts.jsonl'), Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}=`, answer: 2 * i })).join('\n'));
  writeFileSync(join(dir, 'lower.mjs'), 'export default (prompt, completion) => [...completion].filter((c) => c >= "a" && c <= "z").length / Math.max(1, completion.length);\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = ['grpo', '--model', 'base', '--tokenizer', 'bytes', '--data-file', 'prompts.jsonl', '--threads', '1', '--num-generations', '4', '--batch-size', '12',
  '--max-completion-length', '6', '--reward', './lower.mjs', '--max-steps', '4', '--lr', '0.01', '--seed', '5'];

interface StepLine {
  step: number;
  loss: number;
  reward: number;
  grad_norm: number;
  completions: { mean_length: number };
  rollout_workers: number;
  staleness: number;
  policy_version: number;
}

function steps(name: string): StepLine[] {
  return readFileSync(join(dir, 'experiments', name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StepLine);
}

/** The step figures of a run on workers against the in-process run's: the same completions, so the same rewards, loss and gradient. */
function assertSameRun(remote: StepLine[], local: StepLine[], workers: number): void {
  assert.equal(remote.length, local.length);
  for (const [i, r] of remote.entries()) {
    const l = local[i];
    assert.equal(r.completions.mean_length, l.completions.mean_length, `step ${i}: mean completion length`);
    assert.equal(r.reward, l.reward, `step ${i}: reward`);
    assert.ok(Math.abs(r.loss - l.loss) <= 1e-6, `step ${i}: loss ${r.loss} on workers, ${l.loss} in process`);
    assert.ok(Math.abs(r.grad_norm - l.grad_norm) <= 1e-5 * Math.max(1, l.grad_norm), `step ${i}: grad norm ${r.grad_norm} vs ${l.grad_norm}`);
    assert.deepEqual([r.rollout_workers, r.staleness, r.policy_version], [workers, 0, i]);
    assert.deepEqual([l.rollout_workers, l.staleness, l.policy_version], [0, 0, i]);
  }
  // The policy moved: later steps sampled from weights the workers received (else step 2+ would differ).
  assert.ok(local.some((l, i) => i > 0 && l.reward !== local[0].reward));
}

describe('smolcluster grpo --rollout-workers', { timeout: 300_000 }, () => {
  it('synchronous mode, full fine-tuning: 2 workers give the in-process run\'s figures, step by step', async () => {
    const local = await runCli([...BASE, '--name', 'local-full'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(local.code, 0, local.stderr);
    const remote = await runCli([...BASE, '--name', 'remote-full', '--rollout-workers', '2'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(remote.code, 0, remote.stderr);
    assert.match(remote.stderr, /grpo step 4\/4: .* 2 rollout workers, staleness 0$/m);
    assertSameRun(steps('remote-full'), steps('local-full'), 2);
  });

  it('synchronous mode under LoRA (only the adapters sent): the in-process run\'s figures', async () => {
    const lora = ['--lora-rank', '4', '--lr', '0.05'];
    const local = await runCli([...BASE, ...lora, '--name', 'local-lora'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(local.code, 0, local.stderr);
    const remote = await runCli([...BASE, ...lora, '--name', 'remote-lora', '--rollout-workers', '2'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(remote.code, 0, remote.stderr);
    assertSameRun(steps('remote-lora'), steps('local-lora'), 2);
  });
});
