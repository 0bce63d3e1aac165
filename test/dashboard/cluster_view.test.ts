import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunState, describeEvent } from '../../src/dashboard/state.js';
import type { EventRecord } from '../../src/metrics/events.js';

const ev = (kind: string, f: Record<string, unknown> = {}): EventRecord => ({ v: 1, kind, time: 1, ...f }) as EventRecord;

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

test("each node's states over time and where each task ran", () => {
  const s = new RunState('cluster', null);
  for (const e of [
    ev('coordinator_started', { port: 1, time: 100 }),
    ev('node_joined', { node: 'a:1', how: 'registered', time: 110 }),
    ev('node_state', { node: 'a:1', state: 'busy', time: 120 }),
    ev('node_state', { node: 'a:1', state: 'busy', time: 125 }),
    ev('task_done', { node: 'a:1', job: 1, round: 2, task: 7, device: 'webgpu', ms: 31, attempt: 2, time: 150 }),
    ev('node_state', { node: 'a:1', state: 'idle', time: 160 }),
    ev('node_dead', { node: 'a:1', reason: 'killed', time: 200 }),
  ]) s.addEvent(e);
  const c = s.status().cluster!;
  assert.equal(c.startedAt, 100);
  assert.deepEqual(c.nodes[0].history, [
    { time: 110, state: 'idle' }, { time: 120, state: 'busy' }, { time: 160, state: 'idle' }, { time: 200, state: 'dead' },
  ], 'a repeated state is not a change');
  assert.deepEqual(c.tasks, [{ job: 1, round: 2, task: 7, node: 'a:1', device: 'webgpu', ms: 31, attempt: 2, time: 150 }]);
});

test("a coordinator's events read as sentences in the log, not JSON", () => {
  const lines = [
    ev('task_done', { node: 'a:1', job: 1, round: 2, task: 7, device: 'cpu', ms: 31.2, train_error: 0.51234 }),
    ev('round', { job: 1, round: 2, validation_error: 0.9, train_error: 0.8, ms: 1200, nodes: ['a:1'] }),
    ev('node_dead', { node: 'b:2', reason: 'missed heartbeats', tasks_requeued: 2 }),
    ev('task_assigned', { node: 'a:1', job: 1, round: 2, task: 3, why: 'least loaded', attempt: 2 }),
  ].map(describeEvent);
  assert.deepEqual(lines.map((l) => [l.text, l.level]), [
    ['job 1 round 2 task 7 done on a:1 (cpu) in 31 ms, training error 0.5123', 'info'],
    ['job 1 round 2: validation error 0.9000, training error 0.8000 (1200 ms)', 'info'],
    ['node b:2 dead: missed heartbeats; 2 task(s) requeued', 'error'],
    ['job 1 round 2 task 3 → a:1 (attempt 2): least loaded', 'info'],
  ]);
  for (const l of lines) assert.doesNotMatch(l.text, /[{"]/);
});
