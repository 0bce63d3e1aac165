import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunState } from '../../src/dashboard/state.js';
import type { EventRecord } from '../../src/metrics/events.js';

const ev = (kind: string, f: Record<string, unknown> = {}): EventRecord => ({ v: 1, kind, time: 1, ...f });

test("a coordinator's events become node states (idle / busy / dead), devices and rounds", () => {
  const s = new RunState('cluster', null);
  assert.equal(s.status().cluster, null, 'a training run has no cluster view');
  for (const e of [
    ev('coordinator_started', { port: 1 }),
    ev('node_joined', { node: 'a:1', how: 'registered' }),
    ev('node_joined', { node: 'b:2', how: 'registered' }),
    ev('node_device', { node: 'a:1', device: 'webgpu' }),
    ev('node_device', { node: 'b:2', device: 'cpu' }),
    ev('node_state', { node: 'a:1', state: 'busy' }),
    ev('task_done', { node: 'a:1' }),
    ev('node_dead', { node: 'b:2', reason: 'missed heartbeats for 1200 ms (limit 1000 ms)' }),
    ev('round', { job: 1, round: 1, validation_error: 0.9, train_error: 0.8, ms: 40 }),
  ]) s.addEvent(e);
  const c = s.status().cluster!;
  assert.deepEqual(c.nodes.map((n) => [n.id, n.state, n.tasksDone, n.device]), [['a:1', 'busy', 1, 'webgpu'], ['b:2', 'dead', 0, 'cpu']]);
  assert.match(c.nodes[1].note!, /missed heartbeats/);
  assert.deepEqual(c.rounds, [{ job: 1, round: 1, validationError: 0.9, trainError: 0.8, ms: 40 }]);
});
