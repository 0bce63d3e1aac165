import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup, type ProcessGroupOptions } from '../../../src/comm/process_group.js';
import type { Module } from '../../../src/nn/module.js';
import { createModel } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { AllReduceStrategy, type Compression, DivergenceError } from '../../../src/train/strategies/allreduce.js';
import type { StrategyContext } from '../../../src/train/strategies/strategy.js';
import { HEALTH_WIDTH } from '../../../src/train/loop/monitors.js';
import { type Exited, maxRelDiff, readSavedParams, runCliProcess, stepRecords, tempDir } from '../../helpers/cluster.js';

// ---------------------------------------------------------------------------------------------
// Unit: AllReduceStrategy over in-process transports.

function tinyModel(seed: number): Module {
  return createModel({ type: 'mlp', inputDim: 5, hidden: 4, out: 3 }, seed);
}

interface Rank {
  strategy: AllReduceStrategy;
  ctx: StrategyContext;
}

/** n ranks whose models start from different seeds (setup must make them equal). */
function world(n: number, opts: { checksumEvery?: number; bucketFloats?: number; group?: ProcessGroupOptions; compression?: Compression } = {}): Rank[] {
  const transports = createInProcessTransports(n, { timeoutMs: 5000 });
  return transports.map((t, r) => {
    const model = tinyModel(100 + r);
    const optimizer = makeOptimizer(model.arena(), { name: 'sgd', lr: 0.1 });
    const strategy = new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 5000, ...opts.group }), {
      checksumEvery: opts.checksumEvery, bucketFloats: opts.bucketFloats, compression: opts.compression,
    });
    return { strategy, ctx: { model, optimizer } };
  });
}

const params = (r: Rank): Float32Array => r.ctx.model.arena().params.readSync();
const grads = (r: Rank): Float32Array => r.ctx.model.arena().grads.readSync();

describe('AllReduceStrategy (in-process transports)', () => {
  it('setup gives every rank rank 0\'s parameters (bit-identical)', async () => {
    const w = world(3);
    assert.ok(maxRelDiff(params(w[1]), params(w[0])) > 0, 'the fixture must start with different models');
    const before0 = params(w[0]).slice();
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    for (const r of w) assert.deepEqual(params(r), before0);
  });

  it('a corrupted rank is caught at the next checksum step, and the error names it on every rank', async () => {
    const w = world(2, { checksumEvery: 5 });
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    // Not a checksum step ((step + 1) % 5 !== 0): no collective, nothing compared.
    params(w[1])[3] += 1e-3;
    await Promise.all(w.map((r) => r.strategy.afterStep(r.ctx, 2)));
    // Step 4 is the 5th step: the checksums are compared and rank 1 differs from rank 0.
    const outcomes = await Promise.allSettled(w.map((r) => r.strategy.afterStep(r.ctx, 4)));
    for (const [rank, o] of outcomes.entries()) {
      assert.equal(o.status, 'rejected', `rank ${rank} did not notice the divergence`);
      const err = (o as PromiseRejectedResult).reason;
      assert.ok(err instanceof DivergenceError, `rank ${rank}: ${err}`);
      assert.deepEqual(err.ranks, [1]);
      assert.equal(err.code, 'DIVERGED');
      assert.match(err.message, /at step 5: rank 1 differ/);
    }
  });

  it('a single flipped low bit is enough to be named, among 3 ranks', async () => {
    const w = world(3, { checksumEvery: 1 });
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    await Promise.all(w.map((r) => r.strategy.afterStep(r.ctx, 0))); // equal: passes
    new Uint32Array(params(w[2]).buffer, params(w[2]).byteOffset, 1)[0] ^= 1;
    const outcomes = await Promise.allSettled(w.map((r) => r.strategy.afterStep(r.ctx, 1)));
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      assert.deepEqual(((o as PromiseRejectedResult).reason as DivergenceError).ranks, [2]);
    }
  });

  it('corruption before setup is repaired by the broadcast, not reported', async () => {
    const w = world(2, { checksumEvery: 1 });
    params(w[1]).fill(7);
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    await Promise.all(w.map((r) => r.strategy.afterStep(r.ctx, 0)));
    assert.deepEqual(params(w[1]), params(w[0]));
  });

  for (const [label, n, group, bucketFloats] of [
    ['2 ranks, direct algorithm, one bucket', 2, {}, undefined],
    ['3 ranks, ring algorithm, buckets of 7 floats', 3, { directMaxBytes: 0, chunkBytes: 16 }, 7],
  ] as const) {
    it(`gradients are averaged weighted by samples and the loss is the global mean (${label})`, async () => {
      const w = world(n, { group, bucketFloats });
      await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
      const samples = [10, 30, 24].slice(0, n);
      const losses = [1.5, 3.0, 0.25].slice(0, n);
      const len = grads(w[0]).length;
      // Rank r's mean gradient: a different, non-constant vector per rank.
      const local = w.map((_, r) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.37 + r) * (r + 1)));
      w.forEach((r, i) => grads(r).set(local[i]));
      const total = samples.reduce((a, b) => a + b, 0);
      const expected = Float64Array.from({ length: len }, (_, i) => local.reduce((s, g, r) => s + g[i] * samples[r], 0) / total);
      const expectedLoss = losses.reduce((s, l, r) => s + l * samples[r], 0) / total;

      const out = await Promise.all(w.map((r, i) => r.strategy.reduceGradients(r.ctx, losses[i], samples[i])));
      for (const [rank, o] of out.entries()) {
        assert.ok(Math.abs(o.loss - expectedLoss) <= 1e-6 * expectedLoss, `rank ${rank} loss ${o.loss} vs ${expectedLoss}`);
        assert.ok(o.waitMs >= 0 && o.commMs >= 0, `rank ${rank} timings ${o.waitMs} ${o.commMs}`);
        assert.ok(maxRelDiff(grads(w[rank]), expected) < 1e-6, `rank ${rank} gradient differs from the weighted mean`);
      }
      // Every rank holds the same bits, so the optimizer steps keep the models identical.
      for (const r of w) assert.deepEqual(grads(r), grads(w[0]));
      // And the plain (unweighted) mean is measurably different here: the test can fail.
      const plain = Float64Array.from({ length: len }, (_, i) => local.reduce((s, g) => s + g[i], 0) / n);
      assert.ok(maxRelDiff(grads(w[0]), plain) > 1e-2);
    });
  }

  it('int8: the statistics ride in the gradient message (one message per step), loss exact, gradient within the codec', async () => {
    const w = world(2, { compression: 'int8', bucketFloats: 20 });
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    const len = grads(w[0]).length;
    const local = w.map((_, r) => Float32Array.from({ length: len }, (_, i) => Math.cos(i * 0.41 + r) * (r + 1)));
    w.forEach((r, i) => grads(r).set(local[i]));
    const expected = Float64Array.from({ length: len }, (_, i) => (local[0][i] * 8 + local[1][i] * 24) / 32);
    const out = await Promise.all(w.map((r, i) => r.strategy.reduceGradients(r.ctx, i + 1, i === 0 ? 8 : 24)));
    for (const o of out) {
      assert.equal(o.loss, (1 * 8 + 2 * 24) / 32);
      assert.equal(o.waitMs, 0);
      // Buckets [b1 w2 b2] (19 floats) and [w1] (20): int8 is 4 + 19 (padded to 24) and 4 + 20 bytes;
      // the statistics (loss·samples, samples, a health row per rank) ride after the first. Nothing else is sent.
      assert.equal(len, 39);
      assert.equal(o.info?.bytes_sent, 24 + 4 * (2 + 2 * HEALTH_WIDTH) + 24);
    }
    const scale = Math.max(...local[1].map(Math.abs));
    for (const r of w) for (let i = 0; i < len; i++) assert.ok(Math.abs(grads(r)[i] - expected[i]) <= scale / 127, `[${i}] ${grads(r)[i]} vs ${expected[i]}`);
    assert.deepEqual(grads(w[1]), grads(w[0]));
  });

  it('equal samples: the gradient is exactly the plain mean', async () => {
    const w = world(2);
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    grads(w[0]).fill(1);
    grads(w[1]).fill(3);
    const out = await Promise.all(w.map((r, i) => r.strategy.reduceGradients(r.ctx, i + 1, 16)));
    for (const r of w) assert.ok(grads(r).every((g) => g === 2));
    for (const o of out) assert.equal(o.loss, 1.5);
  });
});

// ---------------------------------------------------------------------------------------------
// Integration: N workers at batch B are the same computation as one process at batch N·B.

const STEPS = 30;
const TOL = 1e-5;

describe('ring all-reduce data parallelism equals single-process training (CLI, 127.0.0.1)', { timeout: 120_000 }, () => {
  let dir = '';
  const runs = new Map<string, { exit: Exited; losses: number[]; params: Float32Array }>();

  async function train(name: string, workers: number, batch: number, seed: number): Promise<void> {
    const args = [
      'train', '--workers', String(workers), '--batch-size', String(batch), '--max-steps', String(STEPS), '--seed', String(seed),
      '--threads', '1', '--checksum-every', '10', '--timeout', '20', '--name', name, '--experiments-dir', dir, '--save', join(dir, `${name}.bin`),
    ];
    const exit = await runCliProcess(args, { timeoutMs: 60_000 });
    assert.equal(exit.code, 0, `${name} failed:\n${exit.stderr}`);
    const metrics = join(dir, name, 'metrics.jsonl');
    const all = stepRecords(metrics);
    assert.equal(all.length, STEPS * workers, `${name}: step records`);
    // Every rank reports the same global-batch loss at every step.
    for (let s = 0; s < STEPS; s++) {
      const atStep = all.filter((r) => r.step === s);
      assert.deepEqual(atStep.map((r) => r.rank), [...Array(workers).keys()], `${name}: ranks at step ${s}`);
      for (const r of atStep) assert.equal(r.loss, atStep[0].loss, `${name}: rank ${r.rank} loss at step ${s}`);
      for (const r of atStep) assert.equal(r.samples, batch);
    }
    // Every allreduce rank trains on a batch, so every step has a loss.
    const losses = stepRecords(metrics, 0).map((r) => {
      assert.ok(r.loss !== null, `${name}: step ${r.step} has no loss`);
      return r.loss;
    });
    runs.set(name, { exit, losses, params: readSavedParams(join(dir, `${name}.bin`)).params });
  }

  before(async () => {
    dir = tempDir('allreduce');
    // The single-process runs overlap the clusters (they are mostly start-up time).
    // allSettled: a failure must not leave the other run writing into a folder `after` removes.
    const first = await Promise.allSettled([train('single', 1, 64, 3).then(() => train('other-seed', 1, 64, 4)), train('two', 2, 32, 3)]);
    for (const r of first) if (r.status === 'rejected') throw r.reason;
    await train('four', 4, 16, 3);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function lossDiff(a: number[], b: number[]): number {
    assert.equal(a.length, b.length);
    return Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.abs(b[i])));
  }

  for (const name of ['two', 'four']) {
    it(`${name === 'two' ? 2 : 4} workers: same per-step losses and final parameters as 1 process at the global batch`, () => {
      const single = runs.get('single')!;
      const multi = runs.get(name)!;
      assert.equal(multi.losses.length, STEPS);
      const dl = lossDiff(multi.losses, single.losses);
      const dp = maxRelDiff(multi.params, single.params);
      assert.ok(dl <= TOL, `loss differs by ${dl.toExponential(2)} (relative)`);
      assert.ok(dp <= TOL, `parameters differ by ${dp.toExponential(2)} (relative to max |param|)`);
      // Training did move the parameters: a match is not two untouched initialisations.
      assert.ok(multi.losses[STEPS - 1] < multi.losses[0] * 0.8, `loss ${multi.losses[0]} → ${multi.losses[STEPS - 1]}`);
      process.stdout.write(`# ${name}: max relative loss diff ${dl.toExponential(2)}, param diff ${dp.toExponential(2)}, run ${(multi.exit.ms / 1000).toFixed(1)} s\n`);
    });
  }

  it('another seed differs by far more than the tolerance (the comparison can fail)', () => {
    const single = runs.get('single')!;
    const other = runs.get('other-seed')!;
    assert.ok(lossDiff(other.losses, single.losses) > 1000 * TOL);
    assert.ok(maxRelDiff(other.params, single.params) > 1000 * TOL);
  });
});
