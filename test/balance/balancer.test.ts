import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../src/comm/inproc.js';
import { ProcessGroup } from '../../src/comm/process_group.js';
import { Balancer, type RebalanceEvent, makePolicy } from '../../src/balance/index.js';

/** n ranks; rank r reports `msPerSample(r, step)` for its samples after every step. */
async function run(n: number, steps: number, msPerSample: (rank: number, step: number) => number, shardOf = (r: number) => ({ index: r, count: n, compute: true })) {
  const groups = createInProcessTransports(n, { timeoutMs: 5000 }).map((t) => new ProcessGroup(t, { timeoutMs: 5000 }));
  const events: RebalanceEvent[] = [];
  const balancers = groups.map((g, r) => new Balancer(g, makePolicy('dynamic', { rebalanceInterval: 5 }), shardOf(r), (e) => events.push(e)));
  const history: number[][][] = [];
  for (let step = 0; step < steps; step++) {
    const shares = await Promise.all(balancers.map((b) => b.sharesAt(step)));
    history.push(shares.map((s) => [...s]));
    balancers.forEach((b, r) => {
      const shard = shardOf(r);
      if (!shard.compute) return;
      const samples = Math.round(64 * shares[r][shard.index]);
      b.observe(step, samples, samples * msPerSample(r, step));
    });
  }
  await Promise.all(groups.map((g) => g.close()));
  return { history, events };
}

describe('Balancer (in-process group)', () => {
  it('every rank applies the same shares at the same step; a slow rank gets a quarter, and a mid-run slowdown is followed', async () => {
    // Rank 1 is 3× slower per sample; from step 20 rank 0 becomes 3× slower instead.
    const { history, events } = await run(2, 31, (r, step) => (step < 20 ? (r === 1 ? 3 : 1) : (r === 0 ? 3 : 1)));
    for (const [step, perRank] of history.entries()) assert.deepEqual(perRank[1], perRank[0], `step ${step}: ranks disagree`);
    assert.deepEqual(history[4][0], [0.5, 0.5], 'equal until the first decision');
    assert.ok(Math.abs(history[5][0][1] - 0.25) < 1e-6, `after one rebalance: ${history[5][0]}`);
    // A whole window (steps 20–24) at the new speeds departs from the trend: the next decision follows at once.
    assert.ok(Math.abs(history[25][0][0] - 0.25) < 1e-6, `after the slowdown moved to rank 0: ${history[25][0]}`);
    assert.equal(events[0].step, 5);
    assert.deepEqual(events[0].old_shares, [0.5, 0.5]);
    assert.match(events[0].reason, /trend at step 5/);
  });

  it('a slowdown in the middle of a window is followed within two decisions', async () => {
    const { history } = await run(2, 21, (r, step) => (r === 1 && step >= 12 ? 3 : 1));
    assert.ok(Math.abs(history[10][0][1] - 0.5) < 0.01, `equal nodes stay equal: ${history[10][0]}`);
    assert.ok(history[15][0][1] < 0.45, `the first decision moves part of the way: ${history[15][0]}`);
    assert.ok(Math.abs(history[20][0][1] - 0.25) < 1e-6, `the second reaches a quarter: ${history[20][0]}`);
  });

  it('a parameter server (computing nothing) decides for its workers\' shards', async () => {
    const shardOf = (r: number) => (r === 0 ? { index: 0, count: 2, compute: false } : { index: r - 1, count: 2, compute: true });
    const { history } = await run(3, 6, (r) => (r === 2 ? 3 : 1), shardOf);
    for (const perRank of history) assert.deepEqual(perRank[1], perRank[0]);
    assert.ok(Math.abs(history[5][0][1] - 0.25) < 1e-6, `worker 2 (shard 1) is the slow one: ${history[5][0]}`);
  });
});
