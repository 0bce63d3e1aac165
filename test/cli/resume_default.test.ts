/**
 * Resume means resume (issue 33 §2), as a new user does it: a default run (no checkpoint flags, no
 * --name) stopped with Ctrl-C saves the step it was at; `--resume auto` continues it from there in
 * the same folder, may ask for more steps, says so in one line, and metrics.jsonl holds each step
 * once. A --resume auto with nothing to resume says that instead and starts over; one of a run that
 * finished says so and exits 0, its result.json the finished run's.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliProcess, startCli, stepRecords, tempDir, waitFor } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('resume-default');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const train = ['train', '--dataset', 'synthetic-regression', '--model', 'mlp', '--hidden', '16', '--threads', '1', '--eval-batch-size', '1024'];

describe('resume by default', { timeout: 60_000 }, () => {
  it('Ctrl-C saves the step in flight; --resume auto continues it with more steps, without duplicate metrics', async () => {
    const root = join(dir, 'runs');
    const run = startCli([...train, '--epochs', '1000', '--experiments-dir', root]);
    await waitFor(() => /train \d+\/240000/.test(run.stderr), 'the first steps', 20_000);
    run.child.kill('SIGINT');
    const stopped = await run.done;
    assert.equal(stopped.code, 130, stopped.stderr);
    const m = /interrupted \(SIGINT, Ctrl-C\) after step (\d+): saved (\S+); continue with --resume auto/.exec(stopped.stderr);
    assert.ok(m, stopped.stderr);
    const step = Number(m[1]);
    const [name] = readdirSync(root);
    const resumed = await runCliProcess([...train, '--epochs', '1000', '--max-steps', String(step + 40), '--experiments-dir', root, '--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`--resume auto: continuing ${join(root, name).replace(/[/.]/g, '\\$&')} `));
    assert.match(resumed.stderr, new RegExp(`^smolcluster: resumed from step ${step} \\(`, 'm'));
    // The cosine schedule was laid over 240,000 steps; over step + 40 its learning rate at the step changes, and the run says so.
    assert.match(resumed.stderr, new RegExp(`^smolcluster: the learning-rate schedule was planned over 240000 steps and now runs over ${step + 40}: at step ${step} the learning rate goes from \\S+ to \\S+`, 'm'));
    // The run's steps count from its start, as the Trainer's global_step; resumed_from says where this process began.
    const result = JSON.parse(readFileSync(join(root, name, 'result.json'), 'utf8')) as { steps: number; resumed_from: number };
    assert.deepEqual([result.steps, result.resumed_from], [step + 40, step]);
    assert.match(resumed.stdout, new RegExp(`: ${step + 40} steps \\(resumed at step ${step}\\)`));
    assert.deepEqual(readdirSync(root), [name]);
    const steps = stepRecords(join(root, name, 'metrics.jsonl')).map((r) => r.step);
    assert.deepEqual(steps, Array.from({ length: step + 40 }, (_, i) => i), 'each step once, in order');
  });

  it('--resume auto with nothing to resume says so in one line and starts at step 0', async () => {
    const r = await runCliProcess([...train, '--max-steps', '3', '--name', 'fresh', '--experiments-dir', join(dir, 'fresh'), '--resume', 'auto']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^smolcluster: --resume auto: nothing to resume in \S+checkpoints; starting at step 0$/m);
    assert.deepEqual(stepRecords(join(dir, 'fresh', 'fresh', 'metrics.jsonl')).map((s) => s.step), [0, 1, 2]);
  });

  it('--resume auto of a finished run says it finished, trains nothing and keeps its result', async () => {
    const args = [...train, '--max-steps', '4', '--name', 'done', '--experiments-dir', join(dir, 'done'), '--checkpoint-every', '2'];
    const first = await runCliProcess(args);
    assert.equal(first.code, 0, first.stderr);
    const result = readFileSync(join(dir, 'done', 'done', 'result.json'), 'utf8');
    const again = await runCliProcess([...args, '--resume', 'auto']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /^smolcluster: \S+done finished at step 4 of 4 already: nothing to train \(a larger --max-steps or --epochs continues it\)$/m);
    assert.doesNotMatch(again.stdout + again.stderr, /NaN|0 steps/);
    assert.equal(readFileSync(join(dir, 'done', 'done', 'result.json'), 'utf8'), result, 'result.json is the finished run\'s');
    assert.deepEqual(stepRecords(join(dir, 'done', 'done', 'metrics.jsonl')).map((s) => s.step), [0, 1, 2, 3]);
  });
});
