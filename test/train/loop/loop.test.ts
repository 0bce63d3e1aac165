import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type EvalRecord, type StepRecord, type TrainData, specFor, train } from '../../../src/train/loop/loop.js';
import { buildResult, totalsVector, unpackTotals } from '../../../src/train/run/result.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { splitTrainTest } from '../../helpers/split.js';

/** MNIST-shaped Gaussian clouds, noisy enough that learning takes some steps. */
function mnistLike(seed = 0, samples = 1200, trainSize = 1000): TrainData {
  return splitTrainTest(syntheticClassification({ seed, samples, inputShape: [1, 28, 28], numClasses: 10, noise: 6 }), trainSize);
}

const DATA = mnistLike();

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [32], batchSize: 32, maxSteps: 60, evalBatchSize: 100, ...over };
}

interface Run {
  steps: StepRecord[];
  evals: EvalRecord[];
  starts: { totalSteps: number; parameters: number }[];
  ends: number;
  outcome: Awaited<ReturnType<typeof train>>;
}

async function run(c: TrainConfig, data: TrainData = DATA): Promise<Run> {
  const r: Omit<Run, 'outcome'> = { steps: [], evals: [], starts: [], ends: 0 };
  const outcome = await train(c, data, new LocalStrategy(), {
    onStart: (info) => r.starts.push({ totalSteps: info.totalSteps, parameters: info.parameters }),
    onStep: (s) => r.steps.push(s),
    onEval: (e) => r.evals.push(e),
    onEnd: () => r.ends++,
  });
  return { ...r, outcome };
}

const lossBits = (r: Run): number[] => r.steps.map((s) => s.loss);
const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;

describe('training loop', () => {
  it('determinism: same seed and backend → bitwise-identical loss sequence and parameters; another seed differs', async () => {
    const a = await run(config({ seed: 1 }));
    const b = await run(config({ seed: 1 }));
    assert.equal(a.steps.length, 60);
    const la = lossBits(a);
    const lb = lossBits(b);
    la.forEach((l, i) => assert.ok(Object.is(l, lb[i]), `step ${i}: loss ${l} != ${lb[i]}`));
    assert.equal(await a.outcome.model.arena().checksum(), await b.outcome.model.arena().checksum());
    assert.deepEqual(a.outcome.finalEval, b.outcome.finalEval);

    const c = await run(config({ seed: 2 }));
    const lc = lossBits(c);
    assert.ok(lc.some((l, i) => !Object.is(l, la[i])), 'seed 2 gave the same losses as seed 1: the seed is ignored');
    assert.notEqual(await c.outcome.model.arena().checksum(), await a.outcome.model.arena().checksum());
  });

  it('evalEvery: onEval after every N-th step, then once at the end (never twice for the last step)', async () => {
    const r = await run(config({ maxSteps: 35, evalEvery: 10 }));
    assert.deepEqual(r.evals.map((e) => e.step), [10, 20, 30, 35]);
    for (const e of r.evals) {
      assert.equal(e.samples, DATA.test.size);
      assert.ok(e.accuracy !== null && e.accuracy >= 0 && e.accuracy <= 1);
      assert.ok(Number.isFinite(e.loss));
    }
    // 1000 samples at batch 32 = 32 steps per epoch: step 35 is in epoch 1.
    assert.deepEqual(r.evals.map((e) => e.epoch), [0, 0, 0, 1]);
    assert.deepEqual(r.evals[3], { step: 35, epoch: 1, ...r.outcome.finalEval });

    const even = await run(config({ maxSteps: 30, evalEvery: 10 }));
    assert.deepEqual(even.evals.map((e) => e.step), [10, 20, 30]);
    const none = await run(config({ maxSteps: 12, evalEvery: 0 }));
    assert.deepEqual(none.evals.map((e) => e.step), [12]);
    // The final evaluation carries the epoch of the last step, not the last configured epoch.
    assert.equal(none.evals[0].epoch, 0);
  });

  it('counts steps, epochs and samples, including the partial last batch of each epoch', async () => {
    const data = mnistLike(3, 130, 100); // 100 training samples: batches 32, 32, 32, 4
    const r = await run(config({ maxSteps: 0, epochs: 2 }), data);
    assert.deepEqual(r.starts, [{ totalSteps: 8, parameters: 784 * 32 + 32 + 32 * 10 + 10 }]);
    assert.deepEqual(r.steps.map((s) => s.step), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(r.steps.map((s) => s.epoch), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert.deepEqual(r.steps.map((s) => s.samples), [32, 32, 32, 4, 32, 32, 32, 4]);
    assert.equal(r.outcome.steps, 8);
    assert.equal(r.outcome.trainSamples, 200);
    assert.equal(r.ends, 1);
    for (const s of r.steps) {
      assert.equal(s.rank, 0);
      assert.ok(s.computeMs > 0 && s.commMs >= 0);
      assert.equal(s.waitMs, 0, 'a single process never waits for peers');
      assert.equal(s.gradNorm, undefined, 'no gradient norm unless clipping is on');
    }
    const secs = r.steps.reduce((n, s) => n + s.computeMs + s.commMs + s.waitMs, 0) / 1000;
    assert.ok(Math.abs(r.outcome.trainSeconds - secs) < 1e-9);
    assert.ok(Math.abs(r.outcome.totals.computeMs - r.steps.reduce((n, s) => n + s.computeMs, 0)) < 1e-6);

    // maxSteps stops mid-epoch; the result summary agrees with the observer.
    const capped = await run(config({ maxSteps: 5, epochs: 2 }), data);
    assert.equal(capped.outcome.trainSamples, 32 * 3 + 4 + 32);
    const perRank = unpackTotals(await new LocalStrategy().gather(totalsVector(capped.outcome)));
    assert.deepEqual(perRank.map((p) => [p.rank, p.samples]), [[0, 132]]);
    const res = buildResult(config({ maxSteps: 5, epochs: 2 }), capped.outcome, {
      backend: 'test', threads: 1, startedAt: new Date(0), endedAt: new Date(2500), strategy: 'local', perRank,
    });
    assert.equal(res.workers, 1);
    assert.equal(res.strategy, 'local');
    assert.equal(res.steps, 5);
    assert.equal(res.wall_seconds, 2.5);
    assert.equal(res.final_loss, capped.steps[4].loss);
    assert.equal(res.test_accuracy, capped.outcome.finalEval!.accuracy);
    // (per-rank totals travel as float32, hence the tolerance)
    assert.ok(Math.abs(res.samples_per_sec / (132 / capped.outcome.trainSeconds) - 1) < 1e-6);
    assert.equal(res.model, 'mlp 784-32-10');
  });

  it('--max-steps > 0 is the run\'s length whatever --epochs says, as the HF Trainer\'s max_steps: the data cycles', async () => {
    const data = mnistLike(3, 130, 100); // 4 batches an epoch
    const r = await run(config({ maxSteps: 10, epochs: 1, schedule: 'constant' }), data);
    assert.deepEqual(r.starts.map((s) => s.totalSteps), [10]);
    assert.deepEqual(r.steps.map((s) => s.epoch), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
    assert.equal(r.outcome.steps, 10);
    // The second epoch draws its own order, as a second epoch of --epochs 2 does (a constant rate: the schedule's length differs).
    const two = await run(config({ maxSteps: 0, epochs: 2, schedule: 'constant' }), data);
    assert.deepEqual(lossBits(r).slice(0, 8), lossBits(two));
  });

  it('the loss goes down and the model learns the synthetic classes', async () => {
    const r = await run(config({ maxSteps: 60, seed: 4 }));
    const losses = lossBits(r);
    const first = mean(losses.slice(0, 5));
    const last = mean(losses.slice(-5));
    assert.ok(last < 0.5 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
    assert.ok(r.outcome.finalEval!.accuracy! > 0.75, `test accuracy ${r.outcome.finalEval!.accuracy}`);
    assert.equal(r.outcome.finalLoss, losses[losses.length - 1]);
  });

  it('the learning rate follows the schedule; clipping reports the gradient norm', async () => {
    const r = await run(config({ maxSteps: 20, lr: 0.05, schedule: 'cosine', warmupSteps: 4, clipGradNorm: 1 }));
    const lrs = r.steps.map((s) => s.lr);
    assert.ok(Math.abs(lrs[0] - 0.05 / 4) < 1e-12, `warm-up starts at lr/4, got ${lrs[0]}`);
    assert.ok(Math.abs(lrs[3] - 0.05) < 1e-12);
    assert.ok(lrs[19] < lrs[10] && lrs[10] < lrs[4]);
    for (const s of r.steps) assert.ok(s.gradNorm !== undefined && Number.isFinite(s.gradNorm) && s.gradNorm > 0);

    const constant = await run(config({ maxSteps: 5, schedule: 'constant', lr: 0.01 }));
    assert.deepEqual(constant.steps.map((s) => s.lr), [0.01, 0.01, 0.01, 0.01, 0.01]);

    const wsd = await run(config({ maxSteps: 10, lr: 0.1, schedule: 'wsd', warmupSteps: 2, decaySteps: 4, minLr: 0.02 }));
    const wsdLrs = wsd.steps.map((s) => s.lr);
    assert.deepEqual(wsdLrs.slice(1, 7), [0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 'warm-up reaches lr at step 1, held until the last 4 steps');
    assert.ok(wsdLrs[7] < 0.1 && wsdLrs[9] < wsdLrs[8] && wsdLrs[9] > 0.02, `decaying towards --min-lr: ${wsdLrs}`);
  });

  it('adam and the cnn run through the same loop', async () => {
    const adam = await run(config({ maxSteps: 10, optimizer: 'adam', lr: 0.001 }));
    assert.equal(adam.steps.length, 10);
    assert.ok(adam.steps.every((s) => Number.isFinite(s.loss)));
    const small = splitTrainTest(syntheticClassification({ seed: 5, samples: 40, inputShape: [1, 8, 8], numClasses: 10 }), 32);
    const cnn = await run({ ...defaultConfig('cnn'), maxSteps: 3, batchSize: 8, evalBatchSize: 8 }, small);
    assert.equal(cnn.steps.length, 3);
    assert.deepEqual(specFor(defaultConfig('cnn'), small.train), { type: 'cnn', inChannels: 1, inputSize: 8, out: 10 });
    assert.deepEqual(specFor({ ...defaultConfig('mlp'), hidden: [16, 8] }, small.train), { type: 'mlp', inputDim: 64, hidden: [16, 8], out: 10 });
  });
});
