/**
 * A parameter server that hangs — alive, sockets open, not answering — with real processes on
 * 127.0.0.1: its workers notice at their deadline, naming it, and re-dial; the local launcher
 * (--max-restarts) finds it silent on its liveness probe, kills it and restarts it from its last
 * checkpoint. Without a restart the workers stop at their reconnect deadline, naming the server.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

// run-tests: apart (its servers and workers judge each other by 2-6 s deadlines while faults stall
// them: a file computing beside it on 2 cores can push a healthy process past them; it failed so with
// two files at once on a loaded machine)

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-ps-hung-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const common = ['train', '--workers', '2', '--dataset', 'synthetic-regression', '--batch-size', '32', '--epochs', '1',
  '--experiments-dir', dir, '--threads', '1'];

function records(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().endsWith('}')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Rank 0's pid once it has taken `step` steps (polls the run's files), or null at the deadline. */
async function serverAtStep(name: string, step: number, deadlineMs: number): Promise<number | null> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const started = records(join(dir, name, 'events.jsonl')).find((e) => e.kind === 'worker_started' && e.rank === 0);
    const steps = records(join(dir, name, 'metrics.jsonl')).filter((r) => r.kind === 'step' && r.rank === 0);
    if (started && steps.some((r) => Number(r.step) >= step)) return Number(started.pid);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}

describe('a hung parameter server (real processes)', () => {
  for (const strategy of ['ps', 'async-ps']) {
    it(`${strategy}: SIGSTOPped, it is killed by the launcher's liveness probe and restarted from its checkpoint; its workers re-dial it`, async () => {
      // The server is slowed (60 ms a step) so the test can stop it after its step-20 checkpoint.
      const name = `stopped-${strategy}`;
      // --timeout is both the probe's deadline and the workers' reconnect window, which must cover the
      // restarted server's start-up: on a loaded 2-core machine that alone has taken over 2 s.
      const run = runCli([...common, '--timeout', '6', '--strategy', strategy, '--max-steps', '60', '--max-restarts', '1', '--checkpoint-every', '10',
        '--name', name, '--fault', 'slow:rank=0:ms=60'], { timeoutMs: 60_000 });
      const pid = await serverAtStep(name, 22, 30_000);
      assert.ok(pid, 'the server never reached step 22');
      process.kill(pid, 'SIGSTOP');
      const r = await run;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`rank 0 \\(pid ${pid}\\) has not answered the launcher for \\d+\\.\\d s \\(hung or stopped\\): killing it to restart it`));
      const events = readFileSync(join(dir, name, 'events.jsonl'), 'utf8');
      assert.match(events, new RegExp(`"kind":"worker_hung","rank":0,"pid":${pid},"silent_ms":\\d+`));
      assert.match(events, /"kind":"worker_restarted","rank":0/);
      const resumed = /"kind":"resumed","rank":0,"file":"[^"]*","step":(\d+)/.exec(events);
      assert.ok(resumed, events);
      const from = Number(resumed[1]);
      assert.ok(from >= 20 && from % 10 === 0, `resumed from step ${from}`);
      for (const w of [1, 2]) assert.match(r.stderr, new RegExp(`${strategy} server: worker rank ${w} \\(re\\)joined at version ${from}`));
      assert.match(events, /"kind":"run_end","status":"ok"/);
    });
  }

  it('without a restart, its workers stop at their deadline, naming the server', async () => {
    const start = Date.now();
    const r = await runCli([...common, '--timeout', '2', '--strategy', 'async-ps', '--max-steps', '40', '--name', 'hung', '--fault', 'hang:rank=0:step=10'], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /async-ps worker [12]: the server \(rank 0\) did not answer \(recv timed out after \d+ ms waiting for rank 0\); reconnecting/);
    assert.match(r.stderr, /reconnect timed out after \d+ ms waiting for rank 0 \(the parameter server \(rank 0\) at 127\.0\.0\.1:\d+ did not come back after \d+ tries; last: /);
    assert.match(r.stderr, /rank 0 did not stop and was killed/);
    assert.ok(Date.now() - start < 30_000, 'the workers did not wait forever');
  });
});
