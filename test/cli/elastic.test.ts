/**
 * Elastic all-reduce with real processes on 127.0.0.1: rank 0 SIGKILLed mid-run is restarted by
 * the launcher (which hosts the store) and rejoins; without a launcher, with the store in its own
 * process (`smolcluster store`), the survivors of a SIGKILLed rank 0 finish the run. Every sample
 * of every epoch is trained on exactly once (checked from metrics.jsonl), no committed step is
 * lost, and every step record's group rank is its worker's place in that epoch's members. Below
 * --min-workers the run stops with a clear message.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SYNTHETIC_REGRESSION } from '../../src/train/run/run.js';
import { checkExactlyOnce } from '../../src/validate/exactly_once.js';
import { runCli } from '../helpers/cli.js';
import { TEST_TOKEN, freePort, startCli } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-elastic-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const COMMON = ['--elastic', '--dataset', 'synthetic-regression', '--batch-size', '16', '--timeout', '4', '--threads', '1'];

function events(name: string): Array<Record<string, unknown>> {
  return readFileSync(join(dir, name, 'events.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every step record's group rank is its worker's place in the members of its membership epoch. */
function assertRenumbered(name: string, changes: Array<Record<string, unknown>>): void {
  const members = new Map(changes.map((e) => [e.epoch as number, e.members as number[]]));
  const steps = readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"kind":"step"')).map((l) => JSON.parse(l) as Record<string, number>);
  const wrong = steps.filter((r) => members.get(r.member_epoch)?.[r.member_rank] !== r.rank || members.get(r.member_epoch)?.length !== r.members);
  assert.deepEqual(wrong.slice(0, 3), [], `${wrong.length} of ${steps.length} step records disagree with their epoch's members`);
}

/** The loss of id 0 at `step`: the survivors continue from the step they all committed, nothing rolled back. */
function assertRank0Lost(changes: Array<Record<string, unknown>>, step: number): void {
  const loss = changes.find((e) => (e.left as number[]).includes(0));
  assert.ok(loss, `a change without id 0: ${JSON.stringify(changes)}`);
  assert.deepEqual(loss.members, [1, 2]);
  assert.equal(loss.step, step, 'continued from the step every survivor committed');
  assert.equal(loss.steps_lost, 0);
}

describe('train --workers N --elastic (real processes)', () => {
  it('survives a SIGKILLed rank 0, restarts it, and sees every sample exactly once per epoch', async () => {
    // The fault kills rank 0 at step 60; restarted, it rejoins and (the fault still set) dies again
    // at its next step: the run goes on with two workers, restarts used up.
    const r = await runCli(['train', '--workers', '3', ...COMMON, '--epochs', '2', '--max-restarts', '1', '--fault', 'kill:rank=0:step=60',
      '--experiments-dir', dir, '--name', 'kill'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const ev = events('kill');
    const changes = ev.filter((e) => e.kind === 'membership');
    assert.deepEqual(changes[0].members, [0, 1, 2]);
    assertRank0Lost(changes, 60);
    assert.ok(ev.some((e) => e.kind === 'worker_restarted' && e.rank === 0), 'rank 0 was restarted');
    assert.ok(changes.some((e) => (e.joined as number[]).includes(0)), `rank 0 rejoined: ${JSON.stringify(changes)}`);
    assert.deepEqual(changes.at(-1)!.members, [1, 2], 'the run ended with the two survivors');
    assert.equal(ev.at(-1)!.kind, 'run_end');
    assert.equal(ev.at(-1)!.status, 'ok');
    const check = checkExactlyOnce(join(dir, 'kill', 'metrics.jsonl'), SYNTHETIC_REGRESSION.train, 0);
    assert.deepEqual(check.problems, []);
    assert.equal(check.epochsExact, 2);
    assertRenumbered('kill', changes);
  });

  it('with the store in its own process (smolcluster store, no launcher), the survivors of a SIGKILLed rank 0 finish', async () => {
    const port = await freePort();
    const flags = ['--world-size', '3', '--master', `127.0.0.1:${port}`, ...COMMON, '--epochs', '1', '--experiments-dir', dir, '--name', 'store'];
    const env = { SMOLCLUSTER_TOKEN: TEST_TOKEN };
    const store = startCli(['store', ...flags], { env, timeoutMs: 60_000 });
    const workers = [0, 1, 2].map((rank) => startCli(['worker', '--rank', String(rank), ...flags, '--fault', 'kill:rank=0:step=40'], { env, timeoutMs: 60_000 }));
    const [w0, w1, w2] = await Promise.all(workers.map((w) => w.done));
    assert.equal(w0.signal, 'SIGKILL', w0.stderr);
    for (const w of [w1, w2]) assert.equal(w.code, 0, w.stderr);
    // The store ends by itself once the run is over and its clients have left.
    const s = await store.done;
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stderr, /the run is over and every worker has left/);
    const changes = events('store').filter((e) => e.kind === 'membership');
    assertRank0Lost(changes, 40);
    const check = checkExactlyOnce(join(dir, 'store', 'metrics.jsonl'), SYNTHETIC_REGRESSION.train, 0);
    assert.deepEqual(check.problems, []);
    assert.equal(check.epochsExact, 1);
    assertRenumbered('store', changes);
  });

  it('below --min-workers the run stops, saying so', async () => {
    const r = await runCli(['train', '--workers', '2', ...COMMON, '--min-workers', '2', '--max-steps', '200', '--fault', 'kill:rank=1:step=20',
      '--experiments-dir', dir, '--name', 'min'], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /only 1 worker left \(id 0\) in membership epoch 2, below --min-workers 2: stopping/);
  });
});
