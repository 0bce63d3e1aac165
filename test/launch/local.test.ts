import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import {
  errorLines, findWorker, isRunning, readJsonl, runCliProcess, startCli, stepRecords, tempDir, waitFor, waitForLines, workersByRank,
} from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('local');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('local launcher (train --workers N)', { timeout: 90_000 }, () => {
  it('a SIGKILLed worker: the launcher exits non-zero naming it, the survivors name it and stop at once', async () => {
    const TIMEOUT_S = 5;
    const GRACE_S = 10; // the launcher's grace after the first failure (local.ts: timeout + 10 s)
    const name = 'killed';
    const launcher = startCli(
      ['train', '--workers', '3', '--max-steps', '100000', '--timeout', String(TIMEOUT_S), '--threads', '1', '--name', name, '--experiments-dir', dir],
      { timeoutMs: 60_000 },
    );
    try {
      const metrics = join(dir, name, 'metrics.jsonl');
      // Training is under way (records are flushed in blocks, so this is some tens of steps in).
      await waitForLines(metrics, 1, 30_000);
      const victim = await findWorker(launcher.pid, 1, 3);
      const workers = workersByRank(launcher.pid);
      const survivors = [0, 2].map((rank) => ({ rank, pid: workers.get(rank)!, stoppedMs: NaN }));
      assert.ok(survivors.every((s) => s.pid !== undefined && isRunning(s.pid)));

      const killedAt = performance.now();
      process.kill(victim, 'SIGKILL');
      // Each survivor is gone (exited, or a zombie awaiting its parent) within...
      await waitFor(() => {
        for (const s of survivors) if (Number.isNaN(s.stoppedMs) && !isRunning(s.pid)) s.stoppedMs = performance.now() - killedAt;
        return survivors.every((s) => !Number.isNaN(s.stoppedMs));
      }, 'the surviving workers to stop', (TIMEOUT_S + GRACE_S + 5) * 1000, 5);
      const exit = await launcher.done;
      const launcherMs = exit.at - killedAt;

      assert.equal(exit.timedOut, false, 'the launcher hung');
      assert.notEqual(exit.code, 0, 'the launcher reported success');
      assert.ok(launcherMs < (TIMEOUT_S + GRACE_S) * 1000, `launcher took ${launcherMs} ms after the kill`);
      // They notice the lost connection at once, not at the peer timeout.
      for (const s of survivors) assert.ok(s.stoppedMs < 2000, `rank ${s.rank} stopped ${Math.round(s.stoppedMs)} ms after the kill`);

      const errors = errorLines(exit.stderr);
      const launcherLines = errors.filter((l) => /SIGKILL/.test(l));
      assert.equal(launcherLines.length, 1, `one line about the kill expected:\n${exit.stderr}`);
      assert.match(launcherLines[0], /^smolcluster: error: worker rank 1 was killed by SIGKILL/);
      // Rank 0 shares the launcher's terminal; rank 2's lines come prefixed.
      const rank0 = errors.filter((l) => l.startsWith('smolcluster: error:') && !/SIGKILL/.test(l));
      const rank2 = errors.filter((l) => l.startsWith('[rank 2] smolcluster: error:'));
      assert.equal(rank0.length, 1, `rank 0's error:\n${exit.stderr}`);
      assert.equal(rank2.length, 1, `rank 2's error:\n${exit.stderr}`);
      for (const line of [...rank0, ...rank2]) assert.match(line, /\brank 1\b.*connection lost/, line);
      assert.doesNotMatch(exit.stderr, /^\s+at /m, 'stack trace printed');
      // The survivors flushed what they had: every line is whole.
      const records = readJsonl(metrics);
      assert.ok(records.length > 0);
      process.stdout.write(
        `# SIGKILL rank 1: rank 0 stopped after ${Math.round(survivors[0].stoppedMs)} ms, rank 2 after ${Math.round(survivors[1].stoppedMs)} ms, ` +
          `launcher exited after ${Math.round(launcherMs)} ms (peer timeout ${TIMEOUT_S} s); ${records.length} records\n`,
      );
    } finally {
      if (launcher.child.exitCode === null) launcher.child.kill('SIGKILL');
      for (const pid of (() => { try { return [...workersByRank(launcher.pid).values()]; } catch { return []; } })()) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  });

  it('a hung (SIGSTOPped) worker: the others time out at --timeout, the launcher kills it and exits non-zero', async () => {
    const TIMEOUT_S = 2;
    const GRACE_S = TIMEOUT_S + 10; // local.ts: after the first failure, the rest get timeout + 10 s
    const name = 'stopped';
    const launcher = startCli(
      ['train', '--workers', '3', '--max-steps', '100000', '--timeout', String(TIMEOUT_S), '--threads', '1', '--name', name, '--experiments-dir', dir],
      { timeoutMs: 60_000 },
    );
    let victim = 0;
    try {
      await waitForLines(join(dir, name, 'metrics.jsonl'), 1, 30_000);
      victim = await findWorker(launcher.pid, 1, 3);
      const stoppedAt = performance.now();
      process.kill(victim, 'SIGSTOP');
      const exit = await launcher.done;
      const ms = exit.at - stoppedAt;
      assert.equal(exit.timedOut, false, 'the launcher hung');
      assert.notEqual(exit.code, 0);
      // The survivors give up at their deadline; once they have all stopped, the launcher kills the
      // hung one 2 s later (well within the longer grace it gives a run that still has live workers).
      assert.ok(ms >= TIMEOUT_S * 1000 && ms < (TIMEOUT_S + GRACE_S + 5) * 1000, `launcher exited ${Math.round(ms)} ms after the stop`);
      const errors = errorLines(exit.stderr);
      const launcherLine = errors.find((l) => l.includes('smolcluster: error: worker rank'));
      assert.ok(launcherLine, exit.stderr);
      assert.match(launcherLine, /rank 1 did not stop and was killed/);
      // Whichever collective was in flight, a survivor that receives from rank 1 names it: rank 2 in
      // the ring (it receives from rank 1), rank 0 in recursive doubling at 3 ranks (rank 0 exchanges
      // with rank 1 while rank 2 waits for rank 0).
      const survivors = errors.filter((l) => l !== launcherLine); // rank 0's lines carry no prefix
      assert.equal(survivors.length, 2, exit.stderr);
      assert.ok(survivors.some((l) => /timed out after \d+ ms waiting for rank 1\b/.test(l)), exit.stderr);
      assert.equal(errors.length, 3, `launcher, rank 0 and rank 2 each print one error:\n${exit.stderr}`);
      assert.doesNotMatch(exit.stderr, /^\s+at /m, 'stack trace printed');
      process.stdout.write(`# SIGSTOP rank 1 (--timeout ${TIMEOUT_S}): launcher exited after ${Math.round(ms)} ms\n`);
    } finally {
      if (launcher.child.exitCode === null) launcher.child.kill('SIGKILL');
      if (victim) {
        try { process.kill(victim, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  });

  it('a 2-worker run writes steps×2 step records with timings and a result.json with both ranks', async () => {
    const STEPS = 20;
    const name = 'two';
    const exit = await runCliProcess(
      ['train', '--workers', '2', '--max-steps', String(STEPS), '--threads', '1', '--timeout', '20', '--name', name, '--experiments-dir', dir],
      { timeoutMs: 60_000 },
    );
    assert.equal(exit.code, 0, exit.stderr);
    assert.match(exit.stdout, /with 2 workers \(allreduce\): 20 steps/);
    const metrics = join(dir, name, 'metrics.jsonl');
    const steps = stepRecords(metrics);
    assert.equal(steps.length, STEPS * 2);
    for (const rank of [0, 1]) assert.deepEqual(steps.filter((r) => r.rank === rank).map((r) => r.step), [...Array(STEPS).keys()]);
    for (const r of steps) {
      for (const k of ['compute_ms', 'comm_ms', 'wait_ms'] as const) {
        assert.equal(typeof r[k], 'number', `${k} of ${JSON.stringify(r)}`);
        assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${k} of ${JSON.stringify(r)}`);
      }
      assert.ok(r.loss !== null && Number.isFinite(r.loss) && r.loss > 0, `loss of ${JSON.stringify(r)}`);
    }
    // Communication really happened on every rank.
    for (const rank of [0, 1]) assert.ok(steps.filter((r) => r.rank === rank).reduce((s, r) => s + r.comm_ms, 0) > 0);

    const result = JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8'));
    assert.equal(result.workers, 2);
    assert.equal(result.strategy, 'allreduce');
    assert.equal(result.steps, STEPS);
    assert.equal(result.per_rank.length, 2);
    assert.deepEqual(result.per_rank.map((p: { rank: number }) => p.rank), [0, 1]);
    for (const p of result.per_rank) {
      assert.equal(p.samples, STEPS * 32);
      for (const k of ['compute_ms', 'comm_ms', 'wait_ms', 'train_seconds']) assert.ok(p[k] >= 0, `${k}: ${p[k]}`);
    }
  });
});
