import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Balancer } from '../../src/balance/balancer.js';
import type { BalancePolicy, Decision } from '../../src/balance/policy.js';
import { createInProcessTransports } from '../../src/comm/inproc.js';
import { ProcessGroup } from '../../src/comm/process_group.js';
import { syntheticClassification } from '../../src/data/synthetic.js';
import { Checkpointer, checkpointFile } from '../../src/train/run/checkpoints.js';
import { defaultConfig } from '../../src/train/run/config.js';
import { type StepRecord, type TrainData, train } from '../../src/train/loop/loop.js';
import { AllReduceStrategy } from '../../src/train/strategies/allreduce.js';
import { splitTrainTest } from '../helpers/split.js';

/** Decides 3:1 at step 3 and nothing else, whatever was measured: the test needs known shares. */
class FixedPolicy implements BalancePolicy {
  readonly name = 'dynamic';
  decidesAt(step: number): boolean {
    return step === 3;
  }
  decide(): Decision {
    return { shares: [0.75, 0.25], reason: 'test' };
  }
}

function data(): TrainData {
  return splitTrainTest(syntheticClassification({ seed: 5, samples: 600, inputShape: [1, 8, 8], numClasses: 4, noise: 2 }), 512);
}

/** Two ranks over in-process transports; rank 0 writes checkpoints every 4 steps into `dir`. */
async function run(dir: string, resume: boolean): Promise<StepRecord[][]> {
  const d = data();
  const config = { ...defaultConfig('mlp'), hidden: [8], batchSize: 16, maxSteps: 8, evalEvery: 0 };
  const steps: StepRecord[][] = [[], []];
  await Promise.all(createInProcessTransports(2, { timeoutMs: 10_000 }).map((t, rank) => {
    const group = new ProcessGroup(t, { timeoutMs: 10_000 });
    const balance = new Balancer(group, new FixedPolicy(), { index: rank, count: 2, compute: true });
    const checkpoints = new Checkpointer({ dir, every: 4, keep: 2, ...(resume ? { resume: dir } : {}) }, 'resume-shares-test', rank === 0, {}, () => balance.shares);
    return train(config, d, new AllReduceStrategy(group), { onStep: (s) => steps[rank].push(s) }, { balance, checkpoints });
  }));
  return steps;
}

test('a resumed run continues with the batch shares its checkpoint saved, not equal ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-resume-shares-'));
  try {
    const first = await run(dir, false);
    assert.deepEqual(first[0].map((s) => s.samples), [16, 16, 16, 24, 24, 24, 24, 24]);
    // As if interrupted before the last checkpoint: resumed from the one after step 4, 3:1 from the first step on.
    rmSync(checkpointFile(dir, 8));
    const resumed = await run(dir, true);
    assert.deepEqual(resumed[0].map((s) => s.step), [4, 5, 6, 7]);
    assert.deepEqual(resumed.map((r) => r.map((s) => s.samples)), [[24, 24, 24, 24], [8, 8, 8, 8]]);
    // The same steps as the uninterrupted run: same data, same losses.
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(resumed[0][i].loss - first[0][4 + i].loss) < 1e-6, `step ${4 + i}: ${resumed[0][i].loss} vs ${first[0][4 + i].loss}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
