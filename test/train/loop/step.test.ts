import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { BatchLoader } from '../../../src/data/loader.js';
import { DistributedSampler } from '../../../src/data/sampler.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { createModel } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { makeSchedule } from '../../../src/nn/optim/schedule.js';
import { Checkpointer, checkpointFile } from '../../../src/train/run/checkpoints.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type EvalRecord, type StepRecord, type TrainData, specFor, train } from '../../../src/train/loop/loop.js';
import { forwardBackward } from '../../../src/train/loop/micro_batches.js';
import { type StepOutcome, type StepWork, exchange } from '../../../src/train/loop/step.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { GradAccumulation, accumulating } from '../../../src/train/strategies/grad_accum.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import type { Strategy, StrategyContext } from '../../../src/train/strategies/strategy.js';

const all = syntheticClassification({ seed: 4, samples: 512 + 64, inputShape: [12], numClasses: 3, noise: 2 });
const DATA: TrainData = {
  train: { ...all, size: 512, inputs: all.inputs.subarray(0, 512 * 12), labels: all.labels.subarray(0, 512) },
  test: { ...all, size: 64, inputs: all.inputs.subarray(512 * 12), labels: all.labels.subarray(512) },
};

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [16], batchSize: 16, maxSteps: 10, evalEvery: 4, evalBatchSize: 64, optimizer: 'adam', ...over };
}

/**
 * A strategy that owns its step the way a schedule would: it runs forward and backward itself
 * (here the whole batch at once, the loop's arithmetic), then calls beforeExchange and exchanges.
 */
class OwnStep extends LocalStrategy {
  readonly exchangeStarts: number[] = [];

  override async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const local = await forwardBackward(ctx.model, work.data, work.batch!, work.batch!.size);
    const out = await exchange(ctx, this, { ...work, beforeExchange: async () => {
      const t = await work.beforeExchange();
      this.exchangeStarts.push(t);
      return t;
    } }, local);
    return out;
  }
}

interface Run {
  params: Float32Array;
  steps: StepRecord[];
  evals: EvalRecord[];
}

async function run(c: TrainConfig, strategy: Strategy, checkpoints?: Checkpointer): Promise<Run> {
  const steps: StepRecord[] = [];
  const evals: EvalRecord[] = [];
  const o = await train(c, DATA, strategy, { onStep: (r) => steps.push(r), onEval: (e) => evals.push(e) }, { checkpoints });
  return { params: Float32Array.from(o.model.arena().params.readSync()), steps, evals };
}

/** What a step's record says about training (not its timings). */
const trained = (r: StepRecord) => ({ step: r.step, epoch: r.epoch, loss: r.loss, samples: r.samples, lr: r.lr });

describe('a strategy that owns the whole step (Strategy.runStep)', () => {
  it('gives the loop-driven step\'s parameters bit for bit, the same records and evaluations', async () => {
    const own = new OwnStep();
    const a = await run(config(), new LocalStrategy());
    const b = await run(config(), own);
    assert.deepEqual(b.params, a.params);
    assert.deepEqual(b.steps.map(trained), a.steps.map(trained));
    assert.deepEqual(b.evals.map((e) => [e.step, e.loss, e.accuracy]), a.evals.map((e) => [e.step, e.loss, e.accuracy]));
    assert.deepEqual(b.evals.map((e) => e.step), [4, 8, 10]);
    // The moment it began its exchange is where the record's compute ends.
    assert.equal(own.exchangeStarts.length, 10);
    b.steps.forEach((r, i) => assert.equal(r.marks!.reduce, performance.timeOrigin + own.exchangeStarts[i]));
  });

  it('checkpoints and resumes: a run interrupted after step 4 ends where the whole run does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sc-step-owner-'));
    try {
      const c = config({ maxSteps: 8, evalEvery: 0 });
      const whole = await run(c, new OwnStep(), new Checkpointer({ dir, every: 4, keep: 2 }, 'step-owner', true));
      rmSync(checkpointFile(dir, 8));
      const resumed = await run(c, new OwnStep(), new Checkpointer({ dir, every: 4, keep: 2, resume: dir }, 'step-owner', true));
      assert.deepEqual(resumed.steps.map((r) => r.step), [4, 5, 6, 7]);
      assert.deepEqual(resumed.params, whole.params);
      assert.deepEqual(resumed.steps.map(trained), whole.steps.slice(4).map(trained));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gradient accumulation owns its step (GradAccumulation)', () => {
  it('the loop wraps a strategy in it for --grad-accum K > 1 only, and never one that owns its step', () => {
    const local = new LocalStrategy();
    assert.equal(accumulating(local, 1), local);
    assert.ok(accumulating(local, 4) instanceof GradAccumulation);
    const own = new OwnStep();
    assert.equal(accumulating(own, 4), own);
    assert.throws(() => new GradAccumulation(own), /strategy local owns its steps already/);
  });

  it('K micro-batches per step are the same arithmetic as forward and backward by micro-batch then the optimizer, bit for bit', async () => {
    const c = config({ batchSize: 8, gradAccum: 4, maxSteps: 6, evalEvery: 0 });
    const looped = await run(c, new LocalStrategy());
    // The same by hand: the loader's K·B batch, micro-batches of B, one optimizer step at the schedule's LR.
    const schedule = makeSchedule({ name: c.schedule, lr: c.lr, totalSteps: 6, warmupSteps: c.warmupSteps });
    const model = createModel(specFor(c, DATA.train), c.seed);
    const optimizer = makeOptimizer(model.arena(), { name: c.optimizer, lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay });
    const sampler = new DistributedSampler({ size: DATA.train.size, worldSize: 1, rank: 0, seed: c.seed, shuffle: true });
    const losses: number[] = [];
    for (const batch of new BatchLoader(DATA.train, sampler, 32).batches(0)) {
      if (losses.length === 6) break;
      model.zeroGrad();
      optimizer.lr = schedule.lrAt(losses.length);
      losses.push((await forwardBackward(model, DATA.train, batch, 8)).loss);
      optimizer.step();
    }
    assert.deepEqual(looped.params, model.arena().params.readSync());
    assert.deepEqual(looped.steps.map((r) => r.loss), losses);
    assert.deepEqual(looped.steps.map((r) => r.samples), new Array(6).fill(32));
  });

  it('evaluates, checkpoints and resumes like any run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sc-grad-accum-'));
    try {
      const c = config({ batchSize: 8, gradAccum: 2, maxSteps: 8, evalEvery: 4 });
      const whole = await run(c, new LocalStrategy(), new Checkpointer({ dir, every: 4, keep: 2 }, 'accum', true));
      assert.deepEqual(whole.evals.map((e) => e.step), [4, 8]);
      rmSync(checkpointFile(dir, 8));
      const resumed = await run(c, new LocalStrategy(), new Checkpointer({ dir, every: 4, keep: 2, resume: dir }, 'accum', true));
      assert.deepEqual(resumed.params, whole.params);
      assert.deepEqual(resumed.steps.map(trained), whole.steps.slice(4).map(trained));
      assert.deepEqual(resumed.evals.map((e) => [e.step, e.loss]), whole.evals.slice(1).map((e) => [e.step, e.loss]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the wrapped strategy\'s exchange: 2 allreduce ranks agree bit for bit and exchange once per step', async () => {
    const transports = createInProcessTransports(2, { timeoutMs: 10_000 });
    const strategies = transports.map((t) => new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 10_000 })));
    let exchanges = 0;
    for (const s of strategies) {
      const reduce = s.reduceGradients.bind(s);
      s.reduceGradients = (...a) => (exchanges++, reduce(...a));
    }
    const c = config({ batchSize: 4, gradAccum: 3, maxSteps: 5, evalEvery: 0 });
    const runs = await Promise.all(strategies.map((s) => run(c, s)));
    assert.equal(exchanges, 10);
    assert.deepEqual(runs[1].params, runs[0].params);
    assert.deepEqual(runs[0].steps.map((r) => r.samples), new Array(5).fill(12));
  });
});

describe('a step owner that ends the run (StepOutcome.stop)', () => {
  /** Trains like the loop until step `at`, where it stops before the update. */
  class StopAt extends LocalStrategy {
    afterSteps = 0;
    constructor(private readonly at: number) {
      super();
    }

    override async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
      const out = await exchange(ctx, this, work, await forwardBackward(ctx.model, work.data, work.batch!, work.batch!.size));
      return work.step === this.at ? { ...out, stop: true } : out;
    }

    override async afterStep(): Promise<void> {
      this.afterSteps++;
    }
  }

  it('takes no update, records nothing for that step, and ends with the parameters of the steps before it', async () => {
    const stopping = new StopAt(3);
    const stopped = await run(config({ evalEvery: 0 }), stopping);
    const three = await run(config({ evalEvery: 0, maxSteps: 3, schedule: 'constant' }), new LocalStrategy());
    const threeAgain = await run(config({ evalEvery: 0, schedule: 'constant' }), new StopAt(3));
    assert.deepEqual(stopped.steps.map((r) => r.step), [0, 1, 2]);
    assert.equal(stopping.afterSteps, 3);
    // The LR schedule is over the planned 10 steps, so compare with a constant rate on both sides.
    assert.deepEqual(threeAgain.params, three.params);
    assert.equal(stopped.evals.length, 1, 'the run still ends with its evaluation');
  });
});
