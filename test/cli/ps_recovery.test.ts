/**
 * Parameter-server recovery with real processes on 127.0.0.1 (the server restarted from its
 * checkpoint is in resume.test.ts): a SIGKILLed worker restarted by the launcher is re-admitted
 * and trains on from the server's version; workers whose server is gone for good stop at their
 * deadline with an error naming it, instead of waiting forever.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-ps-recovery-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const common = ['train', '--workers', '2', '--strategy', 'ps', '--dataset', 'synthetic-regression', '--batch-size', '32', '--epochs', '1',
  '--experiments-dir', dir, '--threads', '1'];

/** The steps rank `rank` recorded, in order. */
function stepsOf(name: string, rank: number): number[] {
  return readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { kind: string; rank: number; step: number })
    .filter((r) => r.kind === 'step' && r.rank === rank).map((r) => r.step);
}

describe('ps recovery (real processes)', () => {
  it('a SIGKILLed worker, restarted, is re-admitted with the current weights and trains on from the server\'s version', async () => {
    // Rank 2 is slowed so the run outlasts the restart of rank 1 (a node start-up) by seconds.
    const r = await runCli([...common, '--max-steps', '60', '--timeout', '20', '--name', 'readmit', '--max-restarts', '1',
      '--fault', 'kill:rank=1:step=5', '--fault', 'slow:rank=2:ms=100'], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr);
    const joined = /worker rank 1 \(re\)joined at version (\d+)/.exec(r.stderr);
    assert.ok(joined, r.stderr);
    const version = Number(joined[1]);
    assert.ok(version > 5 && version < 60, `rejoined at version ${version}`);
    const steps = stepsOf('readmit', 1);
    // Steps 0-4 by the first process, then the server's version on by the restarted one: none in between, none twice.
    assert.deepEqual(steps, [...[0, 1, 2, 3, 4], ...Array.from({ length: 60 - version }, (_, i) => version + i)]);
    const events = readFileSync(join(dir, 'readmit', 'events.jsonl'), 'utf8');
    assert.match(events, /"kind":"worker_restarted","rank":1/);
    assert.match(events, /"kind":"run_end","status":"ok"/);
  });

  it('workers of a server that never comes back stop at their deadline, naming it', async () => {
    const start = Date.now();
    const r = await runCli([...common, '--max-steps', '40', '--timeout', '3', '--name', 'gone', '--fault', 'kill:rank=0:step=5'], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /reconnect timed out after \d+ ms waiting for rank 0 \(the parameter server \(rank 0\) at 127\.0\.0\.1:\d+ did not come back after \d+ tries; last: connection refused/);
    assert.ok(Date.now() - start < 45_000, 'the workers did not wait forever');
  });
});
