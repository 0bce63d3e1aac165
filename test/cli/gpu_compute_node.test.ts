/**
 * A compute node on the GPU beside one on the cpu (real node processes on 127.0.0.1, the GPU being
 * SwiftShader on a machine without one): the device is the node's (`compute-node --device`), so
 * one job's tasks train on both; the coordinator records each node's device and each task's, and
 * the job's validation errors are the all-cpu reference's within float32 rounding (the averaging
 * is the coordinator's, on the host in float64). A bf16 job's tasks go to the cpu node (the GPU node
 * refuses them, saying why). A `--device gpu` node without an adapter stops at start in one line. Skipped when no WebGPU adapter is found, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { COORDINATOR_DEFAULTS } from '../../src/cluster/coordinator.js';
import { fedavgInProcess } from '../../src/cluster/reference.js';
import type { LetterShard } from '../../src/data/letters.js';
import { backend } from '../../src/tensor/dispatch.js';
import { runCliProcess, type Running } from '../helpers/cluster.js';
import { ENV, JOB, letters, startCoordinator, startNode, stopAll, submit } from '../helpers/cluster_jobs.js';
import { TEST_ADAPTER, WEBGPU_CHILD_ENV, webGpuMissingInChild } from '../helpers/webgpu.js';

// run-tests: apart (its GPU node must heartbeat within the coordinator's 5 s deadline while
// SwiftShader compiles its kernels; with a second file beside it on a loaded machine it missed it and
// its tasks went to the cpu node)

const procs: Running[] = [];
let reason: string | null = null;
before(async () => {
  reason = await webGpuMissingInChild();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${reason}`);
});
after(() => stopAll(procs));

/** SwiftShader runs a 1,500-row epoch in ~0.7 s: a small job of 4 shards × 300 rows keeps the test short. */
function rows(s: LetterShard, n: number): LetterShard {
  return { ...s, rows: n, features: s.features.slice(0, n * 16), labels: s.labels.slice(0, n) };
}
const d = letters();
const DATA = { dir: d.dir, train: d.train.slice(0, 4).map((s) => rows(s, 300)), validation: d.validation };
const SMALL = { ...JOB, rounds: 3, epochs: 3 };

describe('compute nodes on the GPU and on the cpu', { timeout: 120_000 }, () => {
  it('one job trains on both; each task says where; the result is the all-cpu one within float32 rounding', async (t) => {
    if (reason) return t.skip(reason);
    // The coordinator's default deadline for heartbeats (5 s), not the tests' 1 s: in one CI run
    // the GPU node's first task was retried on the cpu node and every later task went there too,
    // as when a node is declared dead; SwiftShader compiling the node's kernels within one turn of
    // its event loop (no heartbeat meanwhile) is the likely cause. The failure message now lists
    // the coordinator's rejections, requeues, timeouts and deaths.
    const { c, events } = await startCoordinator({ policy: 'round-robin', deadAfterMs: COORDINATOR_DEFAULTS.deadAfterMs });
    try {
      const [gpu, cpu] = await Promise.all([
        startNode({ coordinator: c.port, device: 'gpu', env: WEBGPU_CHILD_ENV }),
        startNode({ coordinator: c.port, device: 'cpu' }),
      ]);
      procs.push(gpu, cpu);
      assert.match(gpu.stderr, new RegExp(`--device gpu: training on .*${TEST_ADAPTER.source}`, 'i'));
      assert.match(gpu.stderr, /device webgpu\)/);
      const result = await submit(c, { ...SMALL, weighting: 'equal', shards: DATA.train, validation: DATA.validation });

      // The coordinator's roll and events say which node has which device.
      const byPort = (p: number) => `127.0.0.1:${p}`;
      const roll = Object.fromEntries(c.nodes.map((n) => [n.id, n.device]));
      assert.deepEqual(roll, { [byPort(gpu.port)]: 'webgpu', [byPort(cpu.port)]: 'cpu' });
      const known = events.filter((e) => e.kind === 'node_device').map((e) => [e.node, e.device]);
      assert.deepEqual(new Map(known as Array<[string, string]>), new Map([[byPort(gpu.port), 'webgpu'], [byPort(cpu.port), 'cpu']]));
      // Every task's device is its node's, and every round ran tasks on both.
      for (const round of result.history) {
        for (const task of round.tasks) assert.equal(task.device, roll[task.node], `round ${round.round} task ${task.task}`);
        const troubles = events.filter((e) => /^(task_rejected|task_requeued|task_timeout|node_dead)$/.test(e.kind));
        assert.deepEqual(new Set(round.tasks.map((x) => x.device)), new Set(['webgpu', 'cpu']),
          `round ${round.round}: ${JSON.stringify(round.tasks)}; ${JSON.stringify(troubles)}; the GPU node's stderr: ${gpu.stderr}`);
      }
      for (const e of events.filter((x) => x.kind === 'task_done')) assert.equal(e.device, roll[e.node as string]);

      // The all-cpu run of the same job, in one plain loop: the validation errors agree within one
      // row of 3,500 (a GPU delta differs from a cpu one by float32 rounding: test/cluster/gpu_fit.test.ts).
      backend().setThreads(1);
      const want = await fedavgInProcess(DATA, SMALL);
      const got = result.history.map((h) => h.validationError);
      t.diagnostic(`validation errors: mixed ${got.join(', ')}; all-cpu ${want.validationErrors.join(', ')}; checksums ${result.weightsChecksum} / ${want.weightsChecksum}`);
      got.forEach((e, r) => assert.ok(Math.abs(e - want.validationErrors[r]) <= 1 / DATA.validation.rows + 1e-12, `round ${r + 1}: ${e} against ${want.validationErrors[r]}`));

      // A bf16 job: the GPU computes in fp32 only, so the GPU node refuses each task with the
      // reason and the coordinator gives it to the cpu node (no task waits out a timeout).
      const bf16 = await submit(c, { ...SMALL, rounds: 1, precision: 'bf16', weighting: 'equal', shards: DATA.train, validation: DATA.validation });
      assert.ok(bf16.history[0].tasks.every((x) => x.device === 'cpu'), JSON.stringify(bf16.history[0].tasks));
      const refused = events.filter((e) => e.kind === 'task_rejected' && e.job === bf16.job);
      assert.ok(refused.length > 0 && refused.every((e) => e.node === byPort(gpu.port) && /fp32 only/.test(e.reason as string)), JSON.stringify(refused));
    } finally {
      await c.close();
    }
  });

  it('a --device gpu node without an adapter stops at start with one line', async () => {
    const r = await runCliProcess(['compute-node', '--port', '0', '--device', 'gpu'], { env: { ...ENV, VK_ICD_FILENAMES: '/nonexistent/icd.json' }, timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('smolcluster'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /compute node: --device gpu: no WebGPU adapter found/);
    assert.doesNotMatch(r.stderr, /compute node on/);
  });
});
