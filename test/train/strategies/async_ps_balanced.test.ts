import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type StepRecord, train } from '../../../src/train/loop/loop.js';
import { type AsyncPsServer, createAsyncPsStrategy } from '../../../src/train/strategies/async_ps.js';
import { BatchPool, LeaseDesk, firstLease } from '../../../src/train/strategies/async_ps_leases.js';
import { splitTrainTest } from '../../helpers/split.js';

const DATA = splitTrainTest(syntheticClassification({ seed: 5, samples: 900, inputShape: [1, 8, 8], numClasses: 4, noise: 2 }), 800);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [16], batchSize: 16, maxSteps: 24, evalBatchSize: 100, lr: 0.05, ...over };
}

/** Server + 2 workers in one process; worker 2 sleeps `slowMs` before each exchange (its own steps only: the others go on). */
async function cluster(c: TrainConfig, balanced: boolean, slowMs: number): Promise<{ steps: StepRecord[][]; server: AsyncPsServer }> {
  const transports = createInProcessTransports(3, { timeoutMs: 10_000 });
  try {
    const runs = await Promise.all(transports.map(async (t, rank) => {
      const strategy = createAsyncPsStrategy(new ProcessGroup(t, { timeoutMs: 10_000 }), { peerTimeoutMs: 10_000, pushEvery: 2, balanced });
      if (rank === 2) {
        const gradients = strategy.gradients!;
        const reduce = gradients.reduceGradients.bind(gradients);
        gradients.reduceGradients = async (...a) => {
          await sleep(slowMs);
          return reduce(...a);
        };
      }
      const steps: StepRecord[] = [];
      await train(c, DATA, strategy, { onStep: (s) => steps.push(s) });
      return { steps, strategy };
    }));
    return { steps: runs.map((r) => r.steps), server: runs[0].strategy as AsyncPsServer };
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}

describe('async-ps balanced by push cadence', () => {
  it('the pool is the single-process order: every sample once per epoch, leases handed out in order', () => {
    const pool = new BatchPool({ dataSize: 100, batchSize: 16, seed: 3, epochs: 2, workers: 2, stepsPerWorker: 1000 });
    assert.equal(pool.size, 2 * 7, 'capped at the epochs\' batches (7 per epoch)');
    for (const epoch of [0, 1]) {
      const seen = Array.from({ length: 7 }, (_, b) => [...pool.batch(epoch * 7 + b).indices]).flat().sort((a, b) => a - b);
      assert.deepEqual(seen, [...Array(100).keys()], `epoch ${epoch}`);
      assert.ok(pool.batch(epoch * 7).epoch === epoch);
    }
    const desk = new LeaseDesk(pool.size, 3, 2);
    assert.deepEqual([firstLease(1, 3, pool.size), firstLease(2, 3, pool.size)], [{ start: 0, count: 3 }, { start: 3, count: 3 }]);
    assert.deepEqual([desk.grant(2), desk.grant(1), desk.grant(1), desk.grant(2)], [
      { start: 6, count: 3 }, { start: 9, count: 3 }, { start: 12, count: 2 }, { start: 14, count: 0 },
    ]);
    assert.deepEqual([...desk.granted], [[1, 8], [2, 6]]);
  });

  it('a worker 3× slower takes fewer batches; together they train the pool once', async () => {
    const c = config();
    const { steps, server } = await cluster(c, true, 12);
    const [fast, slow] = [steps[1].length, steps[2].length];
    // The fixed shards would give each 24 steps: the pool is their 48 batches, shared by speed.
    assert.equal(fast + slow, 48);
    assert.ok(fast >= 1.5 * slow, `fast worker ${fast} batches, slow one ${slow}`);
    assert.deepEqual([...server.desk!.granted.values()], [fast, slow]);
    // One push per lease of 2 batches, each applied in one server step.
    assert.equal(steps[0].length, 24);
    assert.ok(steps[1].every((s) => s.samples === 16) && steps[2].every((s) => s.samples === 16), 'every step is a whole batch');
  });

  it('without balancing each worker trains its own shard: the fast one stops early and idles', async () => {
    const { steps } = await cluster(config(), false, 12);
    assert.deepEqual([steps[1].length, steps[2].length], [24, 24]);
  });
});
