/**
 * `smolcluster grpo --checkpoint-every N` and `--resume DIR|auto` end to end on a tiny random Llama:
 * a run resumed from its checkpoint takes the steps the uninterrupted run took (the same rewards,
 * losses and gradient norms, step by step), for full fine-tuning and for LoRA with a reference;
 * metrics.jsonl keeps each step once (the lines written after the checkpoint by the run that stopped
 * are cut); a truncated newest checkpoint is refused by name and the one before it taken; a
 * checkpoint of other settings is refused as another run's; Ctrl-C finishes the step in flight, saves
 * it and exits 130, and the run resumes from that step.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import type { LlamaSpec } from '../../src/nn/models/index.js';
import { spawn } from 'node:child_process';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { randomModel } from '../generate/families.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 260, context: 32, layers: 2, width: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8,
  ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};

let dir = '';
before(() => {
  dir = tempDir('grpo-resume');
  saveFolder(join(dir, 'base'), randomModel(SPEC, 3), SPEC);
  writeFileSync(join(dir, 'prompts.jsonl'), Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}=`, answer: 2 * i })).join('\n'));
  writeFileSync(join(dir, 'lower.mjs'), 'export default (prompt, completion) => [...completion].filter((c) => c >= "a" && c <= "z").length / Math.max(1, completion.length);\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = ['grpo', '--model', 'base', '--tokenizer', 'bytes', '--data-file', 'prompts.jsonl', '--threads', '1', '--num-generations', '4', '--batch-size', '8',
  '--max-completion-length', '5', '--reward', './lower.mjs', '--lr', '0.01', '--seed', '2'];

interface Line { kind: string; step: number; loss: number; reward: number; grad_norm: number }

function lines(name: string): Line[] {
  return readFileSync(join(dir, 'experiments', name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
}

function assertSameSteps(resumed: Line[], whole: Line[]): void {
  const [a, b] = [resumed.filter((l) => l.kind === 'grpo'), whole.filter((l) => l.kind === 'grpo')];
  assert.deepEqual(a.map((l) => l.step), b.map((l) => l.step), 'each step once, in order');
  for (const [i, l] of a.entries()) {
    assert.equal(l.reward, b[i].reward, `step ${i}: reward`);
    assert.ok(Math.abs(l.loss - b[i].loss) <= 1e-6, `step ${i}: loss ${l.loss} resumed, ${b[i].loss} uninterrupted`);
    assert.ok(Math.abs(l.grad_norm - b[i].grad_norm) <= 1e-5 * Math.max(1, b[i].grad_norm), `step ${i}: grad norm ${l.grad_norm} vs ${b[i].grad_norm}`);
  }
  assert.ok(b.some((l) => l.reward !== b[0].reward), 'the policy moved (else any resume would look right)');
}

describe('smolcluster grpo --resume', { timeout: 240_000 }, () => {
  for (const [label, extra] of [['full fine-tuning', []], ['LoRA with a reference (β 0.04)', ['--lora-rank', '4', '--lr', '0.05', '--beta', '0.04']]] as const) {
    it(`${label}: stopped after step 6 with a checkpoint at 4, resumed, it takes the uninterrupted run's steps`, async () => {
      const tag = extra.length ? 'lora' : 'full';
      const whole = await runCli([...BASE, ...extra, '--max-steps', '8', '--checkpoint-every', '0', '--name', `whole-${tag}`], { cwd: dir, timeoutMs: 120_000 });
      assert.equal(whole.code, 0, whole.stderr);
      // As a run that died after step 6: its lines for steps 4 and 5 outlive its last checkpoint (4).
      const cut = await runCli([...BASE, ...extra, '--max-steps', '6', '--checkpoint-every', '4', '--name', `cut-${tag}`], { cwd: dir, timeoutMs: 120_000 });
      assert.equal(cut.code, 0, cut.stderr);
      const resumed = await runCli([...BASE, ...extra, '--max-steps', '8', '--checkpoint-every', '4', '--name', `cut-${tag}`, '--resume', 'auto'], { cwd: dir, timeoutMs: 120_000 });
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, new RegExp(`grpo: resumed from step 4 \\(.*cut-${tag}/checkpoints/ckpt-00000004\\.smolckpt\\)`));
      assert.doesNotMatch(resumed.stderr, /grpo step [1-4]\/8/, 'the steps before the checkpoint are not taken again');
      assertSameSteps(lines(`cut-${tag}`), lines(`whole-${tag}`));
    });
  }

  it('Ctrl-C (SIGINT): the step in flight finishes and is saved, the run exits 130 naming the file, and resumes from it', async () => {
    const child = spawn(process.execPath, [CLI, ...BASE, '--max-steps', '100000', '--checkpoint-every', '1000', '--name', 'stopped'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no exit after SIGINT; stderr: ${stderr}`)), 60_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/grpo step 3\//.test(stderr) && child.signalCode === null && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 130, stderr);
    const m = /interrupted \(SIGINT, Ctrl-C\) after step (\d+): saved (\S+ckpt-(\d+)\.smolckpt)/.exec(stderr);
    assert.ok(m, stderr);
    assert.equal(Number(m[3]), Number(m[1]), 'the file is the step\'s');
    const stepped = Number(m[1]);
    const r = await runCli([...BASE, '--max-steps', String(stepped + 1), '--checkpoint-every', '1000', '--name', 'stopped', '--resume', 'auto'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`grpo: resumed from step ${stepped} `));
    assert.deepEqual(lines('stopped').filter((l) => l.kind === 'grpo').map((l) => l.step), Array.from({ length: stepped + 1 }, (_, i) => i));
  });

  it('a truncated newest checkpoint is refused by name and the one before it taken; other settings are another run\'s; auto without --name is refused', async () => {
    const first = await runCli([...BASE, '--max-steps', '4', '--checkpoint-every', '2', '--name', 'torn'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(first.code, 0, first.stderr);
    const newest = join(dir, 'experiments', 'torn', 'checkpoints', 'ckpt-00000004.smolckpt');
    truncateSync(newest, statSync(newest).size - 100);
    const r = await runCli([...BASE, '--max-steps', '5', '--checkpoint-every', '2', '--name', 'torn', '--resume', 'auto'], { cwd: dir, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /checkpoint refused: .*ckpt-00000004\.smolckpt: .*trying the one before it/);
    assert.match(r.stderr, /grpo: resumed from step 2 /);
    assert.deepEqual(lines('torn').filter((l) => l.kind === 'grpo').map((l) => l.step), [0, 1, 2, 3, 4]);

    const other = await runCli([...BASE.map((a) => (a === '0.01' ? '0.02' : a)), '--max-steps', '5', '--name', 'torn', '--resume', join('experiments', 'torn', 'checkpoints')], { cwd: dir, timeoutMs: 120_000 });
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /--resume experiments\/torn\/checkpoints: every checkpoint was refused: .*belongs to another run/);

    const unnamed = await runCli([...BASE, '--max-steps', '2', '--resume', 'auto'], { cwd: dir, timeoutMs: 60_000 });
    assert.notEqual(unnamed.code, 0);
    assert.match(unnamed.stderr, /\(--resume\): auto continues the run --name names/);
  });
});
