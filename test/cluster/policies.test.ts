import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makePolicy, parsePolicy } from '../../src/cluster/policies/index.js';
import type { NodeView } from '../../src/cluster/policies/policy.js';

const nodes = (...inFlight: number[]): NodeView[] => inFlight.map((n, i) => ({ id: `h:${9000 + i}`, inFlight: n, recentMs: null }));

test('round-robin cycles through the nodes in order and skips the ones without a free slot', () => {
  const p = makePolicy('round-robin', 0);
  const all = nodes(0, 0, 0);
  assert.deepEqual([0, 1, 2, 3].map(() => p.pick(all).node.id), ['h:9000', 'h:9001', 'h:9002', 'h:9000']);
  // h:9001 is full (not a candidate): the cycle goes on with h:9002.
  assert.equal(p.pick([all[0], all[2]]).node.id, 'h:9002');
  assert.equal(p.pick([all[0], all[2]]).node.id, 'h:9000');
});

test('random picks uniformly among the candidates, the same way for the same seed', () => {
  const all = nodes(0, 0, 0, 0);
  const draw = (seed: number): string[] => {
    const p = makePolicy('random', seed);
    return Array.from({ length: 4000 }, () => p.pick(all).node.id);
  };
  const a = draw(7);
  assert.deepEqual(draw(7), a);
  assert.notDeepEqual(draw(8), a);
  for (const n of all) {
    const share = a.filter((id) => id === n.id).length / a.length;
    assert.ok(Math.abs(share - 0.25) < 0.03, `${n.id}: ${share}`);
  }
});

test('least-loaded picks the fewest tasks in flight, ties by recent task time (unmeasured first), then id', () => {
  const p = makePolicy('least-loaded', 0);
  assert.equal(p.pick(nodes(2, 1, 3)).node.id, 'h:9001');
  const tie: NodeView[] = [
    { id: 'a', inFlight: 0, recentMs: 30 },
    { id: 'b', inFlight: 0, recentMs: 10 },
    { id: 'c', inFlight: 1, recentMs: 1 },
  ];
  const c = p.pick(tie);
  assert.equal(c.node.id, 'b');
  assert.match(c.why, /fewest in flight \(0\), 10\.0 ms recent task time/);
  assert.equal(p.pick([...tie, { id: 'd', inFlight: 0, recentMs: null }]).node.id, 'd');
  assert.ok(p.allowReject);
  assert.ok(!makePolicy('random', 1).allowReject && !makePolicy('round-robin', 1).allowReject);
});

test("the original's policy numbers are accepted; other names are refused with the choices", () => {
  assert.equal(parsePolicy('1'), 'random');
  assert.equal(parsePolicy('2'), 'least-loaded');
  assert.equal(parsePolicy('3'), 'round-robin');
  assert.throws(() => parsePolicy('fastest'), /unknown policy "fastest": use random \(1\), least-loaded \(2\) or round-robin \(3\)/);
});
