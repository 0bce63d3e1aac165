import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailure } from '../../src/launch/exit_report.js';

test('every worker succeeded: no failure line', () => {
  assert.equal(describeFailure([{ rank: 0, code: 0, signal: null }, { rank: 1, code: 0, signal: null }]), null);
});

test('the first worker that failed is the cause; the others stopped after it, or were killed when hung', () => {
  const line = describeFailure([
    { rank: 2, code: 3, signal: null },
    { rank: 0, code: 1, signal: null },
    { rank: 1, code: null, signal: 'SIGKILL', killedByLauncher: true },
  ]);
  assert.equal(line, 'worker rank 2 exited with code 3; rank 0 stopped after it; rank 1 did not stop and was killed');
});

test('a worker killed from outside is the cause even when a peer that noticed it was reaped first', () => {
  // The fault test's kill: rank 0 saw rank 1's socket close and exited with 1 before rank 1's exit was seen.
  const line = describeFailure([
    { rank: 0, code: 1, signal: null },
    { rank: 1, code: null, signal: 'SIGKILL' },
    { rank: 2, code: 1, signal: null },
  ]);
  assert.equal(line, 'worker rank 1 was killed by SIGKILL; ranks 0, 2 stopped after it');
});
