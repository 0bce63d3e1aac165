import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { IGNORE_INDEX, type TokenDataset } from '../../../src/data/dataset.js';
import { BatchLoader, type TokenBatch } from '../../../src/data/loader.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { Embedding } from '../../../src/nn/layers/embedding.js';
import { buildCnn } from '../../../src/nn/models/cnn.js';
import { backward } from '../../../src/tensor/autograd.js';
import { batchInput, batchLoss } from '../../../src/train/loop/objective.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainData, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { MicroBatchLoss, forwardBackward, hostScalar, microBatchPlan, microBatches } from '../../../src/train/loop/micro_batches.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import type { Strategy } from '../../../src/train/strategies/strategy.js';
import { Rng } from '../../../src/util/rng.js';
import { maxRelDiff } from '../../helpers/cluster.js';

const all = syntheticClassification({ seed: 2, samples: 640 + 64, inputShape: [20], numClasses: 4, noise: 2 });
const DATA: TrainData = {
  train: { ...all, size: 640, inputs: all.inputs.subarray(0, 640 * 20), labels: all.labels.subarray(0, 640) },
  test: { ...all, size: 64, inputs: all.inputs.subarray(640 * 20), labels: all.labels.subarray(640) },
};

function config(over: Partial<TrainConfig>): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [16], maxSteps: 12, evalBatchSize: 64, ...over };
}

/** Counts reduceGradients calls: how often the strategy communicates. */
function counting(s: Strategy): { strategy: Strategy; calls: () => number } {
  let n = 0;
  const gradients = s.gradients!;
  const reduce = gradients.reduceGradients.bind(gradients);
  gradients.reduceGradients = (...args) => {
    n++;
    return reduce(...args);
  };
  return { strategy: s, calls: () => n };
}

describe('hostScalar', () => {
  it('is a number at once where the host maps the loss (the cpu: nothing awaited, nothing copied)', () => {
    assert.equal(hostScalar(Tensor.from([2.5], [])), 2.5);
    assert.equal(hostScalar(Tensor.from([0.25], [], 'float64')), 0.25);
  });
});

describe('gradient accumulation (--grad-accum)', () => {
  it('K micro-batches per step equal one step at K× the batch: same losses and parameters (sgd with momentum, adam)', async () => {
    for (const optimizer of ['sgd', 'adam'] as const) {
      const big = await train(config({ batchSize: 32, optimizer }), DATA, new LocalStrategy());
      const steps: number[] = [];
      const samples: number[] = [];
      const accum = await train(config({ batchSize: 8, gradAccum: 4, optimizer }), DATA, new LocalStrategy(), {
        onStep: (r) => { steps.push(r.loss); samples.push(r.samples); },
      });
      assert.equal(accum.steps, 12);
      assert.deepEqual(samples, new Array(12).fill(32));
      assert.ok(maxRelDiff(accum.model.arena().params.readSync(), big.model.arena().params.readSync()) < 1e-5, `${optimizer}: parameters differ by ${maxRelDiff(accum.model.arena().params.readSync(), big.model.arena().params.readSync())}`);
      assert.ok(Math.abs(accum.finalLoss - big.finalLoss) < 1e-5 * Math.abs(big.finalLoss));
      // Not the same as taking K small steps: without accumulation batch 8 takes other steps.
      const small = await train(config({ batchSize: 8, optimizer }), DATA, new LocalStrategy());
      assert.ok(maxRelDiff(small.model.arena().params.readSync(), big.model.arena().params.readSync()) > 1e-3);
    }
  });

  it('2 allreduce ranks × K=2 micro-batches of B equal one process at 4B, communicating once per optimizer step', async () => {
    const single = await train(config({ batchSize: 16 }), DATA, new LocalStrategy());
    const transports = createInProcessTransports(2, { timeoutMs: 10_000 });
    const ranks = transports.map((t) => counting(new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 10_000 }))));
    const outcomes: TrainOutcome[] = await Promise.all(ranks.map((r) => train(config({ batchSize: 4, gradAccum: 2 }), DATA, r.strategy)));
    for (const [i, o] of outcomes.entries()) {
      assert.equal(o.steps, 12);
      assert.equal(ranks[i].calls(), 12, 'one gradient exchange per optimizer step');
      assert.ok(maxRelDiff(o.model.arena().params.readSync(), single.model.arena().params.readSync()) < 1e-5, `rank ${i}: ${maxRelDiff(o.model.arena().params.readSync(), single.model.arena().params.readSync())}`);
    }
  });

  it('masked-lm micro-batches that score different numbers of tokens still give the whole batch\'s mean gradient', async () => {
    const V = 6;
    const T = 4;
    const size = 10;
    const rng = new Rng(1);
    const inputs = Int32Array.from({ length: size * T }, () => rng.int(V));
    // Sequence i scores i % 4 positions: micro-batches of 3 weigh 3, 6, 5 and 0 tokens.
    const labels = Int32Array.from({ length: size * T }, (_, k) => (k % T < Math.floor(k / T) % 4 ? rng.int(V) : IGNORE_INDEX));
    const data: TokenDataset = { task: 'masked-lm', name: 'm', size, inputShape: [T], inputs, labels, vocabSize: V };
    const batch = new BatchLoader(data, Int32Array.from({ length: size }, (_, i) => i), size).batches().next().value as TokenBatch;
    assert.deepEqual([...microBatches(data, batch, 3)].map((m) => m.size), [3, 3, 3, 1]);
    const whole = new Embedding(V, V, new Rng(4));
    const a = await forwardBackward(whole, data, batch, size);
    const parts = new Embedding(V, V, new Rng(4));
    const b = await forwardBackward(parts, data, batch, 3);
    assert.equal(a.weight, b.weight);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-6);
    assert.ok(maxRelDiff(parts.arena().grads.readSync(), whole.arena().grads.readSync()) < 1e-6);
  });
});

describe('forwardBackward reuses the step buffers', () => {
  it('gives exactly the gradients of a plain forward and backward, step after step (CNN)', async () => {
    const img = syntheticClassification({ seed: 5, samples: 24, inputShape: [1, 8, 8], numClasses: 3, noise: 1 });
    const reused = buildCnn({ type: 'cnn', inChannels: 1, inputSize: 8, out: 3 }, 7);
    const plain = buildCnn({ type: 'cnn', inChannels: 1, inputSize: 8, out: 3 }, 7);
    const order = Int32Array.from({ length: 24 }, (_, i) => i);
    for (const batch of new BatchLoader(img, order, 8).batches()) {
      reused.zeroGrad();
      plain.zeroGrad();
      const r = await forwardBackward(reused, img, batch, 8);
      const loss = batchLoss(img, plain.forward(batchInput(img, batch)), batch);
      backward(loss);
      assert.equal(r.loss, loss.item());
      assert.deepEqual(reused.arena().grads.readSync(), plain.arena().grads.readSync());
    }
  });
});

describe('the micro-batch plan every micro-batch loop walks (microBatchPlan, MicroBatchLoss)', () => {
  it('a batch that fits is one micro-batch, a larger one views of microSize, each with its loss weight; no batch, none', () => {
    const batch = [...new BatchLoader(DATA.train, Int32Array.from({ length: 10 }, (_, i) => i), 10).batches()][0];
    const whole = microBatchPlan(DATA.train, batch, 10);
    assert.equal(whole.length, 1);
    assert.equal(whole[0].micro, batch);
    assert.equal(whole[0].weight, 10);
    const cut = microBatchPlan(DATA.train, batch, 4);
    assert.deepEqual(cut.map((m) => [m.micro.size, m.weight]), [[4, 4], [4, 4], [2, 2]]);
    assert.deepEqual(cut.map((m) => Array.from(m.micro.indices)), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    assert.deepEqual(microBatchPlan(DATA.train, null, 4), []);
  });

  it('the step\'s loss is Σ loss·weight / Σ weight; NaN when nothing was scored', () => {
    const mean = new MicroBatchLoss();
    assert.ok(Number.isNaN(mean.mean));
    mean.add(2, 3);
    mean.add(6, 1);
    assert.equal(mean.weight, 4);
    assert.equal(mean.mean, 3);
  });
});
