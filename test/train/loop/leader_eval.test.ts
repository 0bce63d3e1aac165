import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { defaultConfig } from '../../../src/train/run/config.js';
import { evaluate } from '../../../src/train/loop/evaluate.js';
import { type EvalRecord, type StepRecord, type TrainData, train } from '../../../src/train/loop/loop.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { splitTrainTest } from '../../helpers/split.js';

function data(): TrainData {
  return splitTrainTest(syntheticClassification({ seed: 3, samples: 700, inputShape: [1, 28, 28], numClasses: 10, noise: 6 }), 512);
}

test('only the leader evaluates, on the whole test set; the other ranks go on without evaluating', async () => {
  const d = data();
  const config = { ...defaultConfig('mlp'), hidden: [16], batchSize: 16, maxSteps: 12, evalEvery: 5, evalBatchSize: 50 };
  const evals: EvalRecord[][] = [[], []];
  const outcomes = await Promise.all(createInProcessTransports(2, { timeoutMs: 10_000 }).map((t, rank) =>
    train(config, d, new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 10_000 })), { onEval: (e) => evals[rank].push(e) })));
  assert.deepEqual(evals[1], [], 'rank 1 evaluated');
  assert.equal(outcomes[1].finalEval, null);
  assert.deepEqual(evals[0].map((e) => e.step), [5, 10, 12]);
  // The leader's final figure is the single-process evaluation of its model over all 188 test samples.
  assert.deepEqual(outcomes[0].finalEval, await evaluate(outcomes[0].model, d.test, config.evalBatchSize));
  assert.equal(outcomes[0].finalEval!.samples, 188);
});

test('every rank counts its waits in the steps after an evaluation, and the leader its evaluation time', async () => {
  const d = data();
  const config = { ...defaultConfig('mlp'), hidden: [16], batchSize: 16, maxSteps: 12, evalEvery: 5, evalBatchSize: 50 };
  const steps: StepRecord[][] = [[], []];
  const outcomes = await Promise.all(createInProcessTransports(2, { timeoutMs: 10_000 }).map((t, rank) =>
    train(config, d, new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 10_000 })), { onStep: (s) => steps[rank].push(s) })));
  for (const rank of [0, 1]) {
    // Evaluations after steps 4 and 9 (5 and 10 taken): steps 5 and 10 come right after them.
    const after = steps[rank].filter((s) => s.step === 5 || s.step === 10).reduce((n, s) => n + s.waitMs, 0);
    assert.equal(outcomes[rank].afterEvalWaitMs, after, `rank ${rank}`);
  }
  assert.ok(outcomes[0].evalMs > 0, 'the leader timed its evaluations');
  assert.equal(outcomes[1].evalMs, 0, 'rank 1 never evaluated');
});
