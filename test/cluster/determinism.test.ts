/**
 * The round semantics claim: the same job gives the same validation error at every round — and the
 * same final weights, bit for bit — on 1 node and on 4, under each policy, with load probabilities
 * 0, 0.5 and 0.8, as federated averaging computed in one plain loop. Compute nodes are real
 * processes on 127.0.0.1; the coordinator runs in the test (its CLI is tested in test/cli/).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { POLICY_NAMES } from '../../src/cluster/policies/index.js';
import { backend } from '../../src/tensor/dispatch.js';
import { fedavgInProcess } from '../../src/cluster/reference.js';
import { waitFor } from '../helpers/cluster.js';
import { JOB, letters, nodesFile, outcome, startCoordinator, startNode, stopAll, submit, type NodeProcess } from '../helpers/cluster_jobs.js';

const LOADS = [0, 0.5, 0.8];
const groups = new Map<number, NodeProcess[]>();
let reference: { errors: number[]; checksum: string };

before(async () => {
  backend().setThreads(1); // as on every compute node: the same kernels, the same bits
  const r = await fedavgInProcess(letters(), JOB);
  reference = { errors: r.validationErrors, checksum: r.weightsChecksum };
  const all = await Promise.all(LOADS.flatMap((load) => [0, 1, 2, 3].map((i) => startNode({ load, delayMs: 5, seed: 100 * i + load * 10 }))));
  LOADS.forEach((load, g) => groups.set(load, all.slice(4 * g, 4 * g + 4)));
});

after(() => stopAll([...groups.values()].flat()));

test('one node, no load: the same as federated averaging in one process', async () => {
  const { c } = await startCoordinator({ nodesFile: nodesFile([groups.get(0)![0].port]) });
  try {
    assert.deepEqual(outcome(await submit(c)), reference);
  } finally {
    await c.close();
  }
});

for (const policy of POLICY_NAMES) {
  test(`four nodes, ${policy}: the same result at load 0, 0.5 and 0.8`, async () => {
    for (const load of LOADS) {
      const { c, events } = await startCoordinator({ policy, nodesFile: nodesFile(groups.get(load)!.map((n) => n.port)) });
      try {
        await waitFor(() => c.liveNodes === 4, 'the coordinator to reach its 4 nodes');
        const result = await submit(c);
        assert.deepEqual(outcome(result), reference, `${policy} at load ${load}`);
        const used = new Set(result.history.flatMap((h) => h.tasks.map((t) => t.node)));
        assert.ok(used.size >= 2, `${policy} at load ${load} used ${[...used].join(', ')}`);
        const assigned = events.filter((e) => e.kind === 'task_assigned');
        assert.ok(assigned.every((e) => e.policy === policy && typeof e.why === 'string' && typeof e.node === 'string'));
        if (load === 0.8 && policy === 'least-loaded') assert.ok(events.some((e) => e.kind === 'task_rejected') && events.some((e) => e.kind === 'task_retry'));
        if (load === 0.8 && policy !== 'least-loaded') assert.ok(result.history.some((h) => h.tasks.some((t) => t.ms >= 5)), 'busy nodes delayed tasks');
        if (policy === 'round-robin' && load === 0) {
          // Round 1's first four tasks go to the four nodes in order.
          const first = assigned.slice(0, 4).map((e) => e.node);
          assert.deepEqual(first, [...first].sort());
          assert.equal(new Set(first).size, 4);
        }
      } finally {
        await c.close();
      }
    }
  });
}
