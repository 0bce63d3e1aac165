/**
 * Busy, slow and dead nodes, with real compute-node processes on 127.0.0.1: a node SIGKILLed while
 * it holds a task and restarted on its port, a node that stops answering (SIGSTOP), a node that
 * appears in the re-read nodes file mid-job — and still the result of federated averaging in one
 * process. Then the two ways a job must fail rather than wait forever.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { backend } from '../../src/tensor/dispatch.js';
import { freePort } from '../helpers/cluster.js';
import { fedavgInProcess } from '../../src/cluster/reference.js';
import { JOB, letters, nodesFile, outcome, startCoordinator, startNode, stopAll, submit, type NodeProcess } from '../helpers/cluster_jobs.js';
import { waitFor } from '../helpers/cluster.js';

const nodes: NodeProcess[] = [];
let reference: { errors: number[]; checksum: string };

before(async () => {
  backend().setThreads(1);
  const r = await fedavgInProcess(letters(), JOB);
  reference = { errors: r.validationErrors, checksum: r.weightsChecksum };
});

after(() => stopAll(nodes));

test('a node killed mid-round and restarted, a node that stops answering, and a node added to the file: same result', async () => {
  const slow = { load: 1, delayMs: 250 }; // every task waits 250 ms: tasks are surely in flight when we strike
  const c0 = await startNode(slow);
  nodes.push(c0);
  const file = nodesFile([c0.port]);
  let killed = false;
  let stopped = false;
  let restarted: Promise<NodeProcess> | null = null;
  const { c, events } = await startCoordinator({
    policy: 'round-robin',
    nodesFile: file,
    onEvent: (kind, f) => {
      if (kind === 'job_started') appendFileSync(file, `127.0.0.1,${late.port}\n`);
      if (kind !== 'task_assigned') return;
      if (!killed && f.round === 1 && f.node === `127.0.0.1:${a.port}`) {
        killed = true;
        a.child.kill('SIGKILL');
        restarted = a.done.then(() => startNode({ ...slow, port: a.port, coordinator: c.port }));
      }
      if (!stopped && f.round === 2 && f.node === `127.0.0.1:${b.port}`) {
        stopped = true;
        b.child.kill('SIGSTOP');
      }
    },
  });
  const [a, b, late] = await Promise.all([startNode({ ...slow, coordinator: c.port }), startNode({ ...slow, coordinator: c.port }), startNode(slow)]);
  nodes.push(a, b, late);
  try {
    await waitFor(() => c.liveNodes === 3, 'three nodes to be live');
    const result = await submit(c);
    nodes.push(await restarted!);
    assert.deepEqual(outcome(result), reference);
    const about = (kind: string, port: number) => events.filter((e) => e.kind === kind && e.node === `127.0.0.1:${port}`);
    assert.match(String(about('node_dead', a.port)[0]?.reason), /connection/);
    assert.ok(about('node_joined', a.port).length >= 2, 'the killed node rejoined');
    assert.match(String(about('node_dead', b.port)[0]?.reason), /missed heartbeats for \d+ ms \(limit 1000 ms\)/);
    assert.ok(about('task_requeued', a.port).length >= 1 && about('task_requeued', b.port).length >= 1, 'their tasks went back to the queue');
    assert.match(String(about('node_joined', late.port)[0]?.how), /nodes file/);
    assert.ok(result.history[1].tasks.some((t) => t.attempts > 1), 'round 2 retried a task');
  } finally {
    await c.close();
  }
});

test('a round with no live node fails after its deadline, naming the nodes and what happened to them', async () => {
  const nobody = await freePort();
  const { c } = await startCoordinator({ nodesFile: nodesFile([nobody]), noNodeDeadlineMs: 400 });
  try {
    await assert.rejects(submit(c), (e: Error) => {
      assert.match(e.message, /round 1: no live compute node for \d+ ms \(limit 400 ms\); nodes: 127\.0\.0\.1:\d+ dead \(.*connection refused\)/);
      return true;
    });
  } finally {
    await c.close();
  }
});

test('a task rejected more often than the retry limit fails the job with its history', async () => {
  const busy = nodes[0]; // load probability 1: under least-loaded it rejects every task
  const { c } = await startCoordinator({ policy: 'least-loaded', nodesFile: nodesFile([busy.port]), retry: { baseMs: 1, capMs: 4, maxAttempts: 3 } });
  try {
    await assert.rejects(submit(c), new RegExp(`task 0 \\(train_letters1\\.txt\\) of round 1 failed 3 times \\(limit 3\\): rejected by 127\\.0\\.0\\.1:${busy.port} \\(busy\\) ×3`));
  } finally {
    await c.close();
  }
});
