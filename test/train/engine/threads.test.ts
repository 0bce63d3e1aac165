/** The default thread count (src/train/engine/threads.ts): the flag, then SMOLCLUSTER_THREADS, then the cores' share, calibrated. */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { chooseThreads } from '../../../src/train/engine/threads.js';

const saved = process.env.SMOLCLUSTER_THREADS;
afterEach(() => {
  if (saved === undefined) delete process.env.SMOLCLUSTER_THREADS;
  else process.env.SMOLCLUSTER_THREADS = saved;
});

test('--threads wins, then SMOLCLUSTER_THREADS', () => {
  process.env.SMOLCLUSTER_THREADS = '3';
  assert.deepEqual(chooseThreads(5, 1, 2), { threads: 5, source: '--threads' });
  assert.deepEqual(chooseThreads(undefined, 1, 2), { threads: 3, source: 'SMOLCLUSTER_THREADS' });
});

test('one core per worker or less: one thread, without calibrating', () => {
  delete process.env.SMOLCLUSTER_THREADS;
  assert.deepEqual(chooseThreads(undefined, 2, 2), { threads: 1, source: '2 cores ÷ 2 workers' });
  assert.deepEqual(chooseThreads(undefined, 4, 2), { threads: 1, source: '2 cores ÷ 4 workers' });
  assert.deepEqual(chooseThreads(undefined, 1, 1), { threads: 1, source: '1 core' });
});

test('more cores than workers: the share if the calibration finds it faster, else 1, and says which', () => {
  delete process.env.SMOLCLUSTER_THREADS;
  const c = chooseThreads(undefined, 2, 4);
  assert.ok(c.threads === 1 || c.threads === 2, `threads ${c.threads}`);
  assert.match(c.source, /^4 cores ÷ 2 workers; (2 threads \d+\.\d\d× of 1 in calibration|no thread pool)$/);
  const speedup = Number(/(\d+\.\d\d)×/.exec(c.source)?.[1] ?? NaN);
  if (!Number.isNaN(speedup)) assert.equal(c.threads, speedup >= 1.1 ? 2 : 1);
});
