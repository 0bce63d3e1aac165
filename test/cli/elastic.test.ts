/**
 * Elastic all-reduce with real processes on 127.0.0.1: a worker SIGKILLed mid-run is restarted by
 * the launcher and rejoins; the run finishes with every sample of every epoch trained on exactly
 * once (checked from metrics.jsonl); below --min-workers the run stops with a clear message.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SYNTHETIC_REGRESSION } from '../../src/train/run.js';
import { checkExactlyOnce } from '../../src/validate/exactly_once.js';
import { runCli } from '../helpers/cli.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-elastic-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const COMMON = ['--elastic', '--dataset', 'synthetic-regression', '--batch-size', '16', '--timeout', '4', '--threads', '1'];

function events(name: string): Array<Record<string, unknown>> {
  return readFileSync(join(dir, name, 'events.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('train --workers N --elastic (real processes)', () => {
  it('survives a SIGKILLed worker, restarts it, and sees every sample exactly once per epoch', async () => {
    // The fault kills rank 2 at step 60; restarted, it rejoins and (the fault still set) dies again
    // at its next step: the run goes on with two workers, restarts used up.
    const r = await runCli(['train', '--workers', '3', ...COMMON, '--epochs', '2', '--max-restarts', '1', '--fault', 'kill:rank=2:step=60',
      '--experiments-dir', dir, '--name', 'kill'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const ev = events('kill');
    const changes = ev.filter((e) => e.kind === 'membership');
    assert.deepEqual(changes[0].members, [0, 1, 2]);
    assert.ok(ev.some((e) => e.kind === 'worker_restarted' && e.rank === 2), 'rank 2 was restarted');
    assert.ok(changes.some((e) => (e.joined as number[]).includes(2)), `rank 2 rejoined: ${JSON.stringify(changes)}`);
    assert.deepEqual(changes.at(-1)!.members, [0, 1], 'the run ended with the two survivors');
    assert.equal(ev.at(-1)!.kind, 'run_end');
    assert.equal(ev.at(-1)!.status, 'ok');
    const check = checkExactlyOnce(join(dir, 'kill', 'metrics.jsonl'), SYNTHETIC_REGRESSION.train, 0);
    assert.deepEqual(check.problems, []);
    assert.equal(check.epochsExact, 2);
  });

  it('below --min-workers the run stops, saying so', async () => {
    const r = await runCli(['train', '--workers', '2', ...COMMON, '--min-workers', '2', '--max-steps', '200', '--fault', 'kill:rank=1:step=20',
      '--experiments-dir', dir, '--name', 'min'], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /only 1 worker left \(id 0\) in membership epoch 2, below --min-workers 2: stopping/);
  });
});
