/**
 * `smolcluster fault-test` end to end: real local clusters, real faults injected inside worker
 * processes, detected by the monitors that guard every run. The quick subset (one fault of each
 * kind) is the CI check; a fault the monitors cannot see must be reported missed (exit 1).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FaultTestReport } from '../../src/validate/fault_test.js';
import { runCliProcess, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('fault-test');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const EXPECTED: Record<string, { rule: string[]; stops: boolean }> = {
  slow: { rule: ['straggler'], stops: false },
  'corrupt-nan': { rule: ['non-finite-gradient'], stops: true },
  hang: { rule: ['peer-timeout'], stops: true },
  kill: { rule: ['peer-lost', 'peer-timeout'], stops: true },
};

describe('smolcluster fault-test', { timeout: 150_000 }, () => {
  it('--quick: a slow, a corrupting, a hung and a killed worker are each detected, naming rank 1', async () => {
    const out = join(dir, 'faults.json');
    const exit = await runCliProcess(
      ['fault-test', '--quick', '--steps', '24', '--experiments-dir', join(dir, 'quick'), '--output', out],
      { timeoutMs: 120_000 },
    );
    const report = JSON.parse(readFileSync(out, 'utf8')) as FaultTestReport;
    assert.equal(exit.code, 0, `${exit.stdout}\n${exit.stderr}`);
    assert.equal(report.schema, 'smolcluster-fault-test');
    assert.equal(report.schema_version, 1);
    // The settings under the snake_case keys of every file smolcluster writes (issue 23 §4).
    assert.deepEqual(Object.keys(report.settings).sort(), ['batch_size', 'experiments_dir', 'fault_step', 'rank', 'slow_ms', 'steps', 'timeout_sec', 'workers']);
    assert.equal(report.settings.experiments_dir, join(dir, 'quick'));
    assert.deepEqual(report.scenarios.map((s) => s.scenario), Object.keys(EXPECTED));
    assert.deepEqual(report.summary, { total: 4, detected: 4, missed: 0, verdict: 'pass' });
    for (const s of report.scenarios) {
      const want = EXPECTED[s.scenario];
      assert.ok(s.injected && s.detected, `${s.scenario}: ${JSON.stringify(s)}`);
      assert.ok(want.rule.includes(s.rule!), `${s.scenario} detected by ${s.rule}`);
      assert.deepEqual(s.named_ranks, [1], s.scenario);
      assert.equal(s.injected_step, 8);
      assert.ok(s.time_to_detection_ms! >= 0, `${s.scenario}: ${s.time_to_detection_ms}`);
      assert.equal(s.run_stopped, want.stops, `${s.scenario}: exit ${s.exit_code}`);
      assert.ok(s.detail && s.detail.length > 0);
    }
    const byName = Object.fromEntries(report.scenarios.map((s) => [s.scenario, s]));
    // The hung worker is named when the peer deadline (--timeout, default 3 s) expires, not before
    // (rank 0's wait may have begun a little before rank 1 blocked: some slack for a loaded machine).
    assert.ok(byName.hang.time_to_detection_ms! >= 2000, `hang detected after ${byName.hang.time_to_detection_ms} ms`);
    // The NaN is caught at the step it appeared, before the gradient was communicated.
    assert.equal(byName['corrupt-nan'].detected_step, 8);
    assert.match(byName['corrupt-nan'].detail!, /non-finite gradient on rank 1 at step 8/);
    // The straggler rule needs 5 consecutive slow steps.
    assert.ok(byName.slow.detected_step! >= 12, `slow detected at step ${byName.slow.detected_step}`);
    assert.match(byName.kill.cluster_error!, /worker rank 1 was killed by SIGKILL/);
    // The table.
    assert.match(exit.stdout, /^fault\s+injected\s+detected\s+rule\s+named\s+by\s+time to detect\s+run$/m);
    assert.match(exit.stdout, /^slow\s+rank 1, step 8\s+yes\s+straggler\s+rank 1\s+rank 0\s+\d+ ms\s+completed$/m);
    assert.match(exit.stdout, /^kill\s+rank 1, step 8\s+yes\s+peer-(lost|timeout)\s+rank 1\s+rank 0\s+\d+ ms\s+stopped \(exit 1\)$/m);
    assert.match(exit.stdout, /\n4\/4 faults detected\n$/);
    process.stdout.write(`# fault-test --quick: ${report.scenarios.map((s) => `${s.scenario} ${s.rule} ${s.time_to_detection_ms} ms`).join(', ')}\n`);
  });

  it('a fault below every rule\'s threshold is reported missed, and the exit code is 1', async () => {
    const out = join(dir, 'missed.json');
    // An earlier invocation's run in the same folder, which saw the fault detected: this invocation
    // clears it and reports only what its own run saw (issue 33 §1).
    const stale = join(dir, 'missed', 'fault-test-slow');
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'config.json'), '{}');
    writeFileSync(join(stale, 'events.jsonl'), [
      { kind: 'fault_injected', time: Date.now() - 1000, step: 6, spec: 'slow:rank=1:ms=2:step=6', rank: 1, detail: '' },
      { kind: 'detection', time: Date.now() - 500, step: 10, rule: 'straggler', ranks: [1], observer: 0, detail: 'stale' },
    ].map((e) => JSON.stringify(e)).join('\n'));
    // A 2 ms sleep per step is under the straggler rule's 20 ms floor: not a straggler.
    const exit = await runCliProcess(
      ['fault-test', '--only', 'slow', '--slow-ms', '2', '--steps', '20', '--experiments-dir', join(dir, 'missed'), '--output', out],
      { timeoutMs: 60_000 },
    );
    assert.equal(exit.code, 1, exit.stdout + exit.stderr);
    const report = JSON.parse(readFileSync(out, 'utf8')) as FaultTestReport;
    assert.deepEqual(report.summary, { total: 1, detected: 0, missed: 1, verdict: 'fail' });
    assert.equal(report.scenarios[0].injected, true);
    assert.equal(report.scenarios[0].detected, false);
    assert.equal(report.scenarios[0].ran, true);
    assert.equal(report.num_not_run, 0);
    assert.match(exit.stdout, /^slow\s+rank 1, step 6\s+MISSED\s/m);
    assert.match(exit.stdout, /0\/1 faults detected; MISSED: slow/);
  });

  it('refuses settings that leave no room to detect anything', async () => {
    const exit = await runCliProcess(['fault-test', '--steps', '5', '--experiments-dir', join(dir, 'none')]);
    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /too few steps after the fault/);
    const unknown = await runCliProcess(['fault-test', '--only', 'meteor']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /expected a comma-separated list of slow, corrupt-nan/);
  });
});
