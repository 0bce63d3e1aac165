/**
 * async-ps recovery with real processes on 127.0.0.1, under the local launcher: a SIGKILLed worker
 * restarted by the launcher goes on from its last applied push with the server's current weights;
 * a stalled worker the server gave up on reconnects by itself when it wakes; a SIGKILLed server is
 * restarted from its last checkpoint and its workers re-dial it; a whole run resumed by hand from
 * the server's checkpoint sends each worker back to where it stood.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

// run-tests: apart (its workers and server judge each other by a 2 s deadline while faults stall and
// kill them: a file computing beside it on 2 cores can push a healthy process past them; it failed so
// with two files at once on a loaded machine)

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-async-ps-recovery-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const base = ['train', '--workers', '2', '--strategy', 'async-ps', '--dataset', 'synthetic-regression', '--batch-size', '32', '--epochs', '1',
  '--threads', '1', '--timeout', '2'];
const common = (): string[] => [...base, '--experiments-dir', dir, '--max-restarts', '1'];

interface Line {
  kind: string;
  rank: number;
  step: number;
}

function lines(name: string, file: string): Line[] {
  return readFileSync(join(dir, name, file), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Line);
}

/** The steps rank `rank` recorded, in order. */
function stepsOf(name: string, rank: number): number[] {
  return lines(name, 'metrics.jsonl').filter((r) => r.kind === 'step' && r.rank === rank).map((r) => r.step);
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('async-ps recovery (real processes)', () => {
  it('a SIGKILLed worker (restarted) goes on from its last applied push; a stalled one the server dropped reconnects when it wakes', async () => {
    // The server is slowed (50 ms a push) so the run outlasts rank 1's restart (a node start-up) and
    // rank 2's 3.5 s block at step 10, past the server's 2 s deadline.
    const r = await runCli([...common(), '--max-steps', '60', '--name', 'readmit',
      '--fault', 'kill:rank=1:step=5', '--fault', 'slow:rank=2:step=10:steps=1:ms=3500', '--fault', 'slow:rank=0:ms=50'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /async-ps server: worker rank 2 dropped out \(recv timed out after \d+ ms waiting for rank 2\); it may rejoin/);
    assert.match(r.stderr, /async-ps worker 2: lost the server .*; reconnecting/);
    assert.match(r.stderr, /async-ps worker 2: reconnected; going on from version \d+ at step 11/);
    for (const rank of [1, 2]) assert.match(r.stderr, new RegExp(`async-ps server: worker rank ${rank} \\(re\\)joined at version \\d+`));
    // Rank 1 pushed after each of steps 0-4 and died at step 5: the restarted process takes steps
    // 5-59 (the killed process's last records may be lost with it: it wrote them in batches).
    assert.match(r.stderr, /async-ps worker 1: joined the running run at version \d+; going on from step 5\n/);
    const one = stepsOf('readmit', 1);
    assert.deepEqual(one.slice(one.indexOf(5)), range(5, 60));
    assert.deepEqual(one.slice(0, one.indexOf(5)), range(0, one.indexOf(5)));
    // Rank 2 kept its place (its step-10 update was dropped). Every step once, none skipped.
    assert.deepEqual(stepsOf('readmit', 2), range(0, 60));
    const events = readFileSync(join(dir, 'readmit', 'events.jsonl'), 'utf8');
    assert.match(events, /"kind":"worker_restarted","rank":1/);
    assert.doesNotMatch(events, /"kind":"worker_restarted","rank":2/, 'the stalled worker reconnects by itself');
    for (const rank of [1, 2]) assert.match(events, new RegExp(`"kind":"worker_rejoined","rank":${rank},"version":\\d+`));
    assert.match(events, /"kind":"run_end","status":"ok"/);
  });

  it('a SIGKILLed server is restarted from its last checkpoint and its workers re-dial it', async () => {
    const r = await runCli([...common(), '--max-steps', '40', '--name', 'server', '--checkpoint-every', '10',
      '--fault', 'kill:rank=0:step=25', '--fault', 'slow:rank=0:ms=20'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const from = [1, 2].map((w) => {
      assert.match(r.stderr, new RegExp(`async-ps server: worker rank ${w} \\(re\\)joined at version 20`));
      const going = new RegExp(`async-ps worker ${w}: reconnected; going on from version 20 at step (\\d+)`).exec(r.stderr);
      assert.ok(going, r.stderr);
      return Number(going[1]);
    });
    const events = readFileSync(join(dir, 'server', 'events.jsonl'), 'utf8');
    assert.match(events, /"kind":"worker_restarted","rank":0/);
    assert.match(events, /"kind":"run_end","status":"ok"/);
    assert.match(events, /"kind":"resumed","rank":0,"file":"[^"]*ckpt-00000020\.smolckpt","step":20/);
    // The server's steps (the resumed process replaced the records after its checkpoint): on from
    // 20, one per push, until both workers' last: the pushes applied after step 20 are lost.
    assert.deepEqual(stepsOf('server', 0), range(0, 20 + (40 - from[0]) + (40 - from[1])));
    // The workers kept their places: every step once.
    for (const w of [1, 2]) assert.deepEqual(stepsOf('server', w), range(0, 40));
  });

  it('a whole run resumed from the server\'s checkpoint: each worker goes on from where it stood at that checkpoint', async () => {
    const args = [...base, '--experiments-dir', dir, '--max-steps', '40', '--name', 'whole', '--checkpoint-every', '10'];
    const first = await runCli([...args, '--fault', 'kill:rank=0:step=25', '--fault', 'slow:rank=0:ms=20'], { timeoutMs: 60_000 });
    assert.notEqual(first.code, 0, 'the server was killed and not restarted');
    const second = await runCli([...args, '--resume', 'auto'], { timeoutMs: 60_000 });
    assert.equal(second.code, 0, second.stderr);
    assert.match(readFileSync(join(dir, 'whole', 'events.jsonl'), 'utf8'), /"kind":"resumed","rank":0,"file":"[^"]*ckpt-00000020\.smolckpt","step":20/);
    const from = [1, 2].map((w) => {
      const going = new RegExp(`async-ps worker ${w}: the resumed run goes on from step (\\d+)`).exec(second.stderr);
      assert.ok(going, second.stderr);
      return Number(going[1]);
    });
    // With a push every step, the server's 20 versions at the checkpoint were the workers' first 20 pushes.
    assert.equal(from[0] + from[1], 20);
    for (const [i, w] of [1, 2].entries()) {
      const steps = stepsOf('whole', w);
      assert.deepEqual(steps.slice(steps.length - (40 - from[i])), range(from[i], 40));
    }
  });
});
