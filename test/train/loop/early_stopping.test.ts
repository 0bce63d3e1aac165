/**
 * Early stopping and the best model (issue 33 §6), in-process: the watch counts as the Hugging Face
 * Trainer's EarlyStoppingCallback does (patience, threshold), survives a checkpoint's JSON, and the
 * leader's verdict reaches every rank: two all-reduce ranks on a set they overfit stop at the same
 * step, and the model kept as best is the one whose evaluation had the lowest loss.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import type { ModelSpec } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { EvalWatch, shareVerdict, verdictRoute, watchFor } from '../../../src/train/loop/early_stopping.js';
import { evaluate } from '../../../src/train/loop/evaluate.js';
import { type EvalRecord, type TrainData, train } from '../../../src/train/loop/loop.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import { createModel } from '../../../src/nn/models/index.js';
import { specFor } from '../../../src/train/loop/loop.js';
import { splitTrainTest } from '../../helpers/split.js';

/** 48 noisy training samples an MLP memorises: its test loss falls, then rises. */
const OVERFIT: TrainData = splitTrainTest(syntheticClassification({ seed: 3, samples: 448, inputShape: [1, 28, 28], numClasses: 10, noise: 6 }), 48);

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [64], batchSize: 8, epochs: 40, lr: 0.05, schedule: 'constant', evalBatchSize: 400, ...over };
}

/** Records what the leader was asked to keep: the step, the loss and a copy of the parameters. */
class Kept {
  kept: Array<{ step: number; loss: number; params: Float32Array }> = [];
  async keep(model: Module, _spec: ModelSpec, step: number, loss: number): Promise<void> {
    this.kept.push({ step, loss, params: (await model.arena().params.read()).slice() });
  }
}

describe('EvalWatch', () => {
  it('counts evaluations without an improvement larger than the threshold, keeps the lowest loss, and stops at the patience', () => {
    const w = new EvalWatch(3, 0.05);
    const verdicts = [[10, 1.0], [20, 0.9], [30, 0.95], [40, 0.89], [50, 0.92]].map(([s, l]) => w.observe(s, l));
    assert.deepEqual(verdicts.map((v) => v.improved), [true, true, false, true, false]);
    // 0.89 beats 0.9 by less than the threshold: the best model, but the patience goes on running out.
    assert.deepEqual(verdicts.map((v) => v.stop), [false, false, false, false, true]);
    assert.deepEqual(w.best, { step: 40, loss: 0.89 });
    assert.equal(w.observe(60, NaN).improved, false);
  });

  it('its state survives a checkpoint header (JSON), also before any evaluation', () => {
    const fresh = new EvalWatch(2);
    const back = new EvalWatch(2);
    back.restore(JSON.parse(JSON.stringify(fresh.state())));
    assert.equal(back.best, null);
    assert.equal(back.observe(5, 3).improved, true);
    const again = new EvalWatch(2);
    again.restore(JSON.parse(JSON.stringify(back.state())));
    assert.deepEqual(again.best, { step: 5, loss: 3 });
    assert.equal(again.observe(10, 4).stop, false);
    assert.equal(again.observe(15, 4).stop, true);
    assert.throws(() => again.restore({ bestLoss: 1, bestStep: 1.5, waited: -1 }), /evaluation watch/);
  });

  it('a ps server takes one more step and its reply ends the workers; async-ps and elastic runs are refused by flag', async () => {
    const ctx = { totalSteps: 100 } as Parameters<typeof shareVerdict>[2];
    const v = await shareVerdict(verdictRoute('ps'), () => assert.fail('no gather under ps'), ctx, 30, { improved: false, stop: true });
    assert.deepEqual([v, ctx.totalSteps], [{ improved: false, stop: false }, 31]);
    for (const name of ['async-ps', 'elastic-allreduce']) {
      assert.throws(() => watchFor(config({ earlyStoppingPatience: 2 }), name), new RegExp(`--early-stopping-patience / --save-best: the ${name} strategy`));
    }
    assert.throws(() => watchFor(config({ earlyStoppingThreshold: 0.1 }), 'allreduce'), /--early-stopping-threshold needs --early-stopping-patience/);
    assert.equal(watchFor(config(), 'allreduce'), null);
  });
});

describe('early stopping in the training loop', () => {
  it('two all-reduce ranks stop together on the leader\'s verdict; the kept model is the best evaluation\'s', async () => {
    const transports = createInProcessTransports(2, { timeoutMs: 10_000 });
    const keepers = [new Kept(), new Kept()];
    const evals: EvalRecord[] = [];
    const c = config({ evalEvery: 6, earlyStoppingPatience: 2 });
    const outcomes = await Promise.all(transports.map((t, r) => train({ ...c }, OVERFIT, new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 10_000 })), r === 0 ? { onEval: (e) => evals.push(e) } : {}, { best: keepers[r] })));
    const [lead, other] = outcomes;
    assert.ok(lead.stoppedEarly, 'the overfitting run did not stop early');
    assert.equal(other.steps, lead.steps, 'both ranks took the same steps');
    assert.equal(lead.steps, lead.stoppedEarly.step);
    assert.ok(lead.steps < 240, 'stopped before the 40 epochs');
    // No second evaluation of the model just evaluated.
    assert.equal(evals.at(-1)!.step, evals.at(-2)!.step + 6);
    const losses = evals.map((e) => e.loss);
    const bestAt = losses.indexOf(Math.min(...losses));
    assert.deepEqual(lead.best, { step: evals[bestAt].step, loss: losses[bestAt] });
    assert.equal(evals.length - 1 - bestAt, 2, 'stopped after exactly the patience of evaluations without improvement');
    assert.equal(keepers[1].kept.length, 0, 'only the leader keeps');
    const last = keepers[0].kept.at(-1)!;
    assert.deepEqual([last.step, last.loss], [lead.best!.step, lead.best!.loss]);
    // The kept parameters evaluate to the best loss.
    lead.model.arena().params.write(last.params);
    assert.equal((await evaluate(lead.model, OVERFIT.test, 400)).loss, lead.best!.loss);
  });

  it('ZeRO-3 (a model evaluated sharded): the best model is gathered whole on the leader and kept', async () => {
    const transports = createInProcessTransports(2, { timeoutMs: 10_000 });
    const keepers = [new Kept(), new Kept()];
    const c = config({ evalEvery: 6, earlyStoppingPatience: 2, optimizer: 'adam', lr: 0.01 });
    const [lead, other] = await Promise.all(transports.map((t, r) => train({ ...c }, OVERFIT, new ZeroStrategy(new ProcessGroup(t, { timeoutMs: 10_000 }), { stage: 3 }), {}, { best: keepers[r] })));
    assert.ok(lead.stoppedEarly, 'the overfitting run did not stop early');
    assert.equal(other.steps, lead.steps);
    const last = keepers[0].kept.at(-1)!;
    const model = createModel(specFor(c, OVERFIT.train), 0);
    assert.equal(last.params.length, model.arena().size, 'the whole model, not rank 0\'s shard');
    model.arena().params.write(last.params);
    // ZeRO-3 evaluates layer group by layer group: the same loss up to float rounding.
    const loss = (await evaluate(model, OVERFIT.test, 400)).loss;
    assert.ok(Math.abs(loss - lead.best!.loss) < 1e-6 * loss, `kept model: ${loss}, best evaluation: ${lead.best!.loss}`);
  });

  it('without --eval-every a watched run evaluates at each epoch\'s end; --save-best alone never stops', async () => {
    const evals: EvalRecord[] = [];
    const keeper = new Kept();
    const o = await train(config({ epochs: 4, saveBest: true }), OVERFIT, new LocalStrategy(), { onEval: (e) => evals.push(e) }, { best: keeper });
    assert.equal(o.stoppedEarly, undefined);
    // 48 samples at batch 8: six steps an epoch; the last epoch's end is the final evaluation.
    assert.deepEqual(evals.map((e) => e.step), [6, 12, 18, 24]);
    assert.ok(keeper.kept.length >= 1);
    assert.equal(o.best!.loss, Math.min(...evals.map((e) => e.loss)));
  });
});
