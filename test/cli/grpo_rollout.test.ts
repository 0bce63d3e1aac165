/**
 * `smolcluster grpo --rollout-workers N` end to end: real `rollout-worker` processes on 127.0.0.1,
 * authenticated over real sockets, weights sent after every step. Synchronous mode samples what the
 * in-process run samples (the same seeds, the same kernels at the same weights), so the figures
 * equal the in-process run's step by step — for full fine-tuning (every trainable weight sent) and
 * under LoRA (the adapters alone). A worker started with another LoRA shape is refused by name.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
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
  importance_sampling_ratio: { min: number; mean: number; max: number } | null;
}

/** A port nothing listens on now (the kernel's pick, released). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
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
    // Each step's weights went out whole or as a delta, whichever was smaller (at --lr 0.01 most weights move past their low bits).
    for (const l of steps('remote-full') as unknown as { weight_sync: { delta_bytes: number; whole_bytes: number; sent: string } }[]) {
      assert.equal(l.weight_sync.sent, l.weight_sync.delta_bytes < l.weight_sync.whole_bytes ? 'delta' : 'whole');
    }
  });

  it('synchronous mode under LoRA (only the adapters sent): the in-process run\'s figures', async () => {
    const lora = ['--lora-rank', '4', '--lr', '0.05'];
    const local = await runCli([...BASE, ...lora, '--name', 'local-lora'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(local.code, 0, local.stderr);
    const remote = await runCli([...BASE, ...lora, '--name', 'remote-lora', '--rollout-workers', '2'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(remote.code, 0, remote.stderr);
    assertSameRun(steps('remote-lora'), steps('local-lora'), 2);
  });

  it('asynchronous mode (--max-staleness K): rollouts K versions old at most, importance ratios capped (per token, then per completion), and the reward still rises', async () => {
    for (const [K, mode] of [[1, 'token_truncate'], [2, 'sequence_truncate']] as const) {
      const r = await runCli([...BASE, '--name', `async-${K}`, '--rollout-workers', '2', '--max-staleness', String(K), '--importance-sampling-cap', '2', '--importance-sampling-mode', mode], { cwd: dir, timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = steps(`async-${K}`);
      // Step s's rollouts were asked for when step max(0, s − K) began: that many versions behind.
      assert.deepEqual(lines.map((l) => l.staleness), lines.map((_, s) => Math.min(s, K)));
      assert.deepEqual(lines.map((l) => l.policy_version), [0, 1, 2, 3]);
      for (const l of lines) {
        const is = l.importance_sampling_ratio!;
        assert.ok(is.min > 0 && is.min <= is.mean && is.mean <= is.max && is.max <= 2, `step ${l.step}: ${JSON.stringify(is)}`);
      }
      // Step 0 sampled at version 0 either way: the in-process run's rollouts and reward; later ones are off-policy, so ratios leave 1.
      assert.equal(lines[0].reward, steps('local-full')[0].reward);
      assert.ok(Math.abs(lines[0].importance_sampling_ratio!.mean - 1) < 1e-4, `on-policy step 0: ratio ${lines[0].importance_sampling_ratio!.mean}`);
      assert.ok(lines.slice(1).some((l) => Math.abs(l.importance_sampling_ratio!.mean - 1) > 1e-3), 'later steps are off-policy');
    }
    // Learning, off-policy: 30 steps at K = 1 raise the reward as the in-process test's run does (test/cli/grpo.test.ts).
    const learn = ['--num-generations', '8', '--batch-size', '16', '--max-completion-length', '4', '--max-steps', '30', '--seed', '0'];
    const r = await runCli([...BASE, ...learn, '--name', 'async-learns', '--rollout-workers', '2', '--max-staleness', '1'], { cwd: dir, timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = steps('async-learns');
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const [first, last] = [mean(lines.slice(0, 5).map((l) => l.reward)), mean(lines.slice(-5).map((l) => l.reward))];
    assert.ok(last >= first + 0.3, `reward ${first.toFixed(3)} over the first 5 steps, ${last.toFixed(3)} over the last 5`);
  });

  it('a worker killed with SIGKILL mid-run is named on stderr, the later steps sample on the survivor, and the run ends', async () => {
    // The reward runs in the trainer's process (a worker thread): on its first call it kills one of the trainer's rollout workers.
    writeFileSync(join(dir, 'killer.mjs'), [
      'import { execFileSync } from "node:child_process";',
      'import { existsSync, writeFileSync } from "node:fs";',
      'export default (prompt, completion) => {',
      '  if (!existsSync("killed.pid")) {',
      '    const pid = execFileSync("pgrep", ["-P", String(process.pid), "-f", "rollout-worker"], { encoding: "utf8" }).trim().split("\\n")[0];',
      '    writeFileSync("killed.pid", pid);',
      '    process.kill(Number(pid), "SIGKILL");',
      '  }',
      '  return completion.length;',
      '};',
    ].join('\n'));
    const r = await runCli([...BASE.map((a) => (a === './lower.mjs' ? './killer.mjs' : a)), '--name', 'killed', '--rollout-workers', '2', '--rollout-timeout', '30'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const pid = readFileSync(join(dir, 'killed.pid'), 'utf8');
    assert.match(r.stderr, new RegExp(`grpo: rollout worker \\d \\(127\\.0\\.0\\.1:\\d+, pid ${pid}\\) dropped: `));
    const lines = steps('killed');
    assert.equal(lines.length, 4);
    assert.equal(lines[0].rollout_workers, 2, 'step 0 was sampled before the kill');
    assert.deepEqual(lines.slice(1).map((l) => l.rollout_workers), [1, 1, 1]);
  });

  it('refuses --max-staleness without workers, and a worker started with another LoRA shape, by name', async () => {
    const r = await runCli([...BASE, '--max-staleness', '1'], { cwd: dir });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--max-staleness\): asynchronous rollouts need --rollout-workers N/);
    // A trainer waiting on --rollout-listen for a worker started by hand; the worker has another LoRA shape.
    const port = await freePort();
    const env = { SMOLCLUSTER_TOKEN: 'rollout-cli-test-token-0123456789' };
    const trainer = runCli([...BASE, '--name', 'by-hand', '--rollout-workers', '1', '--rollout-listen', `127.0.0.1:${port}`, '--rollout-timeout', '4'], { cwd: dir, env, timeoutMs: 60_000 });
    const worker = await runCli(['rollout-worker', '--connect', `127.0.0.1:${port}`, '--model', 'base', '--tokenizer', 'bytes', '--lora-rank', '4', '--connect-timeout', '20'], { cwd: dir, env, timeoutMs: 60_000 });
    assert.notEqual(worker.code, 0);
    assert.match(worker.stderr, /model signature mismatch: .*--lora-rank/);
    const t = await trainer;
    assert.notEqual(t.code, 0);
    assert.match(t.stderr, /waiting for 1 rollout worker\(s\) on 127\.0\.0\.1:\d+ \(smolcluster rollout-worker --connect 127\.0\.0\.1:\d+\)/);
    assert.match(t.stderr, /rollout workers timed out after \d+ ms \(0 of 1 connected\)/);
  });
});
