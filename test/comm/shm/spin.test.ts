import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COOL_DOWN_MS, FIRST_SPIN_US, MAX_COOL_DOWN_MS, MAX_SPIN_US, SpinBudget } from '../../../src/comm/shm/spin.js';

test('no spin at first; waits that slept but were short double the budget from the first step up to the cap', () => {
  const s = new SpinBudget();
  assert.equal(s.at(0), 0);
  const seen: number[] = [];
  for (let i = 0; i < 10; i++) {
    s.record(i, 50, s.at(i), false);
    seen.push(s.at(i));
  }
  assert.equal(seen[0], FIRST_SPIN_US);
  assert.equal(seen[1], 2 * FIRST_SPIN_US);
  assert.equal(Math.max(...seen), MAX_SPIN_US);
  for (const b of seen) assert.ok(Number.isInteger(b), `budgets are whole microseconds (${b})`);
});

test('a spin that caught its message keeps the budget', () => {
  const s = new SpinBudget();
  for (let i = 0; i < 3; i++) s.record(0, 30, s.at(0), false);
  const b = s.at(0);
  s.record(1, 5, b, true);
  assert.equal(s.at(1), b);
});

test('a long wait drops the budget; if it spun, no spinning for a cool-down that doubles while it repeats', () => {
  const s = new SpinBudget();
  for (let i = 0; i < 5; i++) s.record(0, 30, s.at(0), false);
  assert.ok(s.at(0) > 0);
  // A long wait that slept at once (budget 0) changes nothing but the budget: no cool-down.
  const fresh = new SpinBudget();
  fresh.record(100, 5000, 0, false);
  fresh.record(100, 30, 0, false);
  assert.equal(fresh.at(100), FIRST_SPIN_US, 'no cool-down after a long wait that did not spin');
  // A long wait that spun: budget 0, and quiet for COOL_DOWN_MS.
  let now = 1000;
  s.record(now, 4000, s.at(now), true);
  assert.equal(s.at(now), 0);
  s.record(now, 30, 0, false); // short sleeps during the cool-down grow the budget again...
  assert.equal(s.at(now + COOL_DOWN_MS - 1), 0, '...but it is not used before the cool-down ends');
  assert.equal(s.at(now + COOL_DOWN_MS), FIRST_SPIN_US);
  // The next slow spin cools down twice as long, and so on up to the cap.
  now += COOL_DOWN_MS;
  s.record(now, 4000, s.at(now), false);
  s.record(now, 30, 0, false);
  assert.equal(s.at(now + 2 * COOL_DOWN_MS - 1), 0);
  assert.equal(s.at(now + 2 * COOL_DOWN_MS), FIRST_SPIN_US);
  for (let i = 0; i < 20; i++) {
    now += MAX_COOL_DOWN_MS;
    s.record(now, 4000, FIRST_SPIN_US, false);
  }
  s.record(now, 30, 0, false);
  assert.equal(s.at(now + MAX_COOL_DOWN_MS - 1), 0);
  assert.equal(s.at(now + MAX_COOL_DOWN_MS), FIRST_SPIN_US, 'the cool-down stops growing at its cap');
});

test('a spin that caught its message resets the cool-down to its first length', () => {
  const s = new SpinBudget();
  let now = 0;
  for (let i = 0; i < 4; i++) {
    s.record(now, 30, 0, false);
    s.record(now, 5000, FIRST_SPIN_US, false); // cool-downs 10, 20, 40, 80 ms
    now += MAX_COOL_DOWN_MS;
  }
  s.record(now, 30, 0, false);
  s.record(now, 5, FIRST_SPIN_US, true);
  s.record(now, 5000, FIRST_SPIN_US, false);
  s.record(now, 30, 0, false);
  assert.equal(s.at(now + COOL_DOWN_MS), FIRST_SPIN_US, 'back to the first cool-down');
});

test('a budget cap of 0 never spins; a negative one is refused', () => {
  const s = new SpinBudget(0);
  for (let i = 0; i < 5; i++) s.record(i, 0, 0, false);
  assert.equal(s.at(10), 0);
  assert.throws(() => new SpinBudget(-1), RangeError);
});
