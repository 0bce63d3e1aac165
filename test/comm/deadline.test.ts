import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deadline, type Waiter } from '../../src/comm/deadline.js';
import { TimeoutError } from '../../src/util/errors.js';

function waiter(peer: number, log: Array<[number, Error]>): Waiter {
  return { peer, expire: (err) => log.push([peer, err]) };
}

test('one timer fails every wait still pending and names each late rank once', async () => {
  const d = new Deadline('allreduce', 30);
  const log: Array<[number, Error]> = [];
  const [a, b, c, done] = [waiter(2, log), waiter(1, log), waiter(2, log), waiter(3, log)];
  for (const w of [a, b, c, done]) d.track(w);
  d.untrack(done);
  await new Promise((res) => setTimeout(res, 80));
  assert.deepEqual(log.map(([p]) => p).sort(), [1, 2, 2]);
  for (const [, err] of log) {
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.message, 'allreduce timed out after 30 ms waiting for ranks 1, 2');
  }
});

test('a finished operation whose waits all completed fails nothing', async () => {
  const d = new Deadline('barrier', 20);
  const log: Array<[number, Error]> = [];
  const w = waiter(1, log);
  d.track(w);
  d.untrack(w);
  d.finish();
  await new Promise((res) => setTimeout(res, 60));
  assert.equal(log.length, 0);
});

test('a receive left posted by a failed operation still times out after finish', async () => {
  const d = new Deadline('allreduce', 20);
  const log: Array<[number, Error]> = [];
  d.track(waiter(4, log));
  d.finish();
  await new Promise((res) => setTimeout(res, 60));
  assert.deepEqual(log.map(([p]) => p), [4]);
});
