/**
 * Reading back one fault-test scenario: only what this invocation produced counts (issue 33 §1: a
 * second run in the same folder once reported the first run's detections), and a run that never
 * trained says so instead of reporting a fault as missed or detected.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type EventLine, scenarioOutcome, stepsRecordedSince } from '../../src/validate/fault_outcome.js';

const FAULT = 'slow:rank=1:ms=60:step=8';
const injected = (time: number): EventLine => ({ kind: 'fault_injected', time, step: 8, spec: FAULT, rank: 1, detail: 'injected' });
const straggler = (time: number): EventLine => ({ kind: 'detection', time, step: 12, rule: 'straggler', ranks: [1], observer: 0, detail: 'rank 1 is a straggler' });
const base = { fault: FAULT, rank: 1, expect: ['straggler'] as const, exitCode: 1, log: '' };

describe('fault-test outcome', () => {
  it('counts a detection of this invocation', () => {
    const o = scenarioOutcome({ ...base, events: [injected(1000), straggler(1500)], stepsRecorded: true, since: 900 });
    assert.equal(o.ran, true);
    assert.equal(o.hit?.rule, 'straggler');
  });

  it('ignores an earlier invocation\'s lines: the stale detection does not count, and nothing ran', () => {
    const log = 'smolcluster: error: --name: experiments/fault-test/fault-test-slow already holds a run (config.json)\n';
    const o = scenarioOutcome({ ...base, events: [injected(1000), straggler(1500)], stepsRecorded: false, since: 2000, log });
    assert.equal(o.ran, false);
    assert.equal(o.injected, null);
    assert.equal(o.hit, null);
    assert.deepEqual(o.others, []);
    assert.match(o.notRunReason!, /^--name: .*already holds a run/);
  });

  it('a run that trained without firing its fault ran (missed), one that left nothing did not', () => {
    assert.equal(scenarioOutcome({ ...base, events: [], stepsRecorded: true, since: 0 }).ran, true);
    const silent = scenarioOutcome({ ...base, events: [], stepsRecorded: false, since: 0, exitCode: null });
    assert.equal(silent.ran, false);
    assert.equal(silent.notRunReason, 'the run recorded no step (exit killed)');
  });

  it('reads step records by their time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fault-outcome-'));
    try {
      const file = join(dir, 'metrics.jsonl');
      writeFileSync(file, `${JSON.stringify({ step: 1, rank: 0, time: 1000 })}\nnot json\n`);
      assert.equal(stepsRecordedSince(file, 500), true);
      assert.equal(stepsRecordedSince(file, 5000), false);
      assert.equal(stepsRecordedSince(join(dir, 'none.jsonl'), 0), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
