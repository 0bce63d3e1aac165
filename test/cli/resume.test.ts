/**
 * Interrupted and resumed equals uninterrupted, step for step: real local clusters (allreduce, ps)
 * are killed mid-run by a fault, then resumed from their checkpoints with --resume auto.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-resume-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Step losses by "step/rank" from a run's metrics.jsonl. */
function losses(name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { kind: string; step: number; rank: number; loss: number };
    if (r.kind === 'step') out.set(`${r.step}/${r.rank}`, r.loss);
  }
  return out;
}

const common = (strategy: string): string[] => ['train', '--workers', '2', '--strategy', ...strategy.split(' '), '--dataset', 'synthetic-regression', '--batch-size', '32',
    '--epochs', '1', '--max-steps', '40', '--checkpoint-every', '10', '--experiments-dir', dir, '--timeout', '10', '--threads', '1'];

async function resumeMatches(strategy: string, killRank: number, relTol: number): Promise<void> {
  const name = strategy.replace(/[^a-z0-9]+/g, '-');
  const full = await runCli([...common(strategy), '--name', `${name}-full`]);
  assert.equal(full.code, 0, full.stderr);
  // A short --timeout: ps workers wait that long for their server to come back before giving up.
  const cut = await runCli([...common(strategy), '--name', `${name}-cut`, '--fault', `kill:rank=${killRank}:step=25`, '--timeout', '3']);
  assert.notEqual(cut.code, 0, 'the fault should end the first run');
  const resumed = await runCli([...common(strategy), '--name', `${name}-cut`, '--resume', 'auto']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const events = readFileSync(join(dir, `${name}-cut`, 'events.jsonl'), 'utf8');
  assert.match(events, /"kind":"resumed","rank":0,"file":"[^"]*ckpt-00000020\.smolckpt","step":20/);
  sameSteps(`${name}-full`, `${name}-cut`, relTol);
}

/** Every step of `cut` equals `full`'s (within relTol), and `cut` retook every step from 20 on. */
function sameSteps(fullName: string, cutName: string, relTol: number): void {
  const a = losses(fullName);
  const b = losses(cutName);
  let compared = 0;
  for (const [key, loss] of b) {
    const want = a.get(key);
    assert.ok(want !== undefined, `step ${key} is not in the uninterrupted run`);
    assert.ok(Math.abs(loss - want) <= relTol * Math.abs(want), `step/rank ${key}: resumed loss ${loss}, uninterrupted ${want}`);
    compared++;
  }
  // Every step from the checkpoint on was retaken, on every rank that records losses.
  for (const [key] of a) if (Number(key.split('/')[0]) >= 30) assert.ok(b.has(key), `step/rank ${key} missing after the resume`);
  assert.ok(compared >= 20, `only ${compared} steps compared`);
}

describe('--checkpoint-every + --resume auto (local clusters, real processes)', () => {
  it('allreduce: a run killed at step 25 and resumed from step 20 takes bit-identical steps', async () => {
    await resumeMatches('allreduce', 1, 0);
  });

  it('diloco (H = 3: step 20 is between syncs, each rank resumes its own parameters, anchor and outer momentum): bit-identical steps', async () => {
    await resumeMatches('diloco --inner-steps 3', 1, 0);
  });

  it('allreduce --compress int8: each rank resumes its own error-feedback residual; bit-identical steps', async () => {
    await resumeMatches('allreduce --compress int8', 1, 0);
  });

  it('ps: the server killed at step 25 and the cluster resumed from step 20 takes the same steps', async () => {
    // The server sums the workers' gradients in arrival order: equal up to float rounding.
    await resumeMatches('ps', 0, 1e-4);
  });

  it('--max-restarts: the launcher restarts a crashed ps server from its last checkpoint; its workers reconnect on their own', async () => {
    const r = await runCli([...common('ps'), '--name', 'ps-restarted', '--max-restarts', '1', '--fault', 'kill:rank=0:step=25']);
    assert.equal(r.code, 0, r.stderr);
    for (const w of [1, 2]) assert.match(r.stderr, new RegExp(`ps worker ${w}: reconnected; going on from version 20`));
    const events = readFileSync(join(dir, 'ps-restarted', 'events.jsonl'), 'utf8');
    assert.match(events, /"kind":"worker_restarted","rank":0/);
    assert.doesNotMatch(events, /"kind":"worker_restarted","rank":[12]/, 'only the server is restarted');
    assert.match(events, /"kind":"run_end","status":"ok"/);
    sameSteps('ps-full', 'ps-restarted', 1e-4);
  });
});
