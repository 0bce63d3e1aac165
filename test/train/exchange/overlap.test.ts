import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createModel } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { backward } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import type { StrategyContext } from '../../../src/train/strategy.js';
import { Rng } from '../../../src/util/rng.js';

const RANKS = 3;
const STEPS = 4;

/** Trains RANKS in-process ranks for STEPS steps; returns rank 0's parameters and the step infos. */
async function run(overlap: boolean): Promise<{ params: Float32Array; infos: unknown[]; bucketStartsInBackward: boolean }> {
  const transports = createInProcessTransports(RANKS, { timeoutMs: 5000 });
  const ranks = transports.map((t, r) => {
    const model = createModel({ type: 'mlp', inputDim: 12, hidden: [16, 16, 8], out: 4 }, 7 + r);
    const ctx: StrategyContext = { model, optimizer: makeOptimizer(model.arena(), { name: 'sgd', lr: 0.1, momentum: 0.9 }) };
    // The ring everywhere and buckets of ~one layer: several buckets, several messages each.
    const group = new ProcessGroup(t, { timeoutMs: 5000, directMaxBytes: 0, chunkBytes: 32 });
    return { ctx, strategy: new AllReduceStrategy(group, { bucketFloats: 150, overlap, checksumEvery: 1 }) };
  });
  await Promise.all(ranks.map((r) => r.strategy.setup(r.ctx)));
  const infos: unknown[] = [];
  let bucketStartsInBackward = false;
  for (let step = 0; step < STEPS; step++) {
    await Promise.all(ranks.map(async ({ ctx, strategy }, r) => {
      ctx.model.zeroGrad();
      const rng = new Rng(1000 * step + r);
      const samples = 4 + r; // unequal shares: the weighting is exercised too
      const x = Tensor.randn([samples, 12], rng);
      const loss = crossEntropy(ctx.model.forward(x), Int32Array.from({ length: samples }, (_, i) => (i + r) % 4));
      if (strategy.backward) await strategy.backward(ctx, loss, samples, step);
      else backward(loss);
      const backwardEnd = performance.timeOrigin + performance.now();
      const out = await strategy.reduceGradients(ctx, loss.item(), samples, step);
      if (r === 0) infos.push(out.info);
      if (out.buckets!.some((b) => b.start < backwardEnd)) bucketStartsInBackward = true;
      ctx.optimizer.step();
      await strategy.afterStep(ctx, step); // checksums: every rank must hold the same bits
    }));
  }
  return { params: ranks[0].ctx.model.arena().params.readSync().slice(), infos, bucketStartsInBackward };
}

describe('gradient buckets overlapped with backward', () => {
  it('give the same parameters, bit for bit, as buckets sent after backward', async () => {
    const off = await run(false);
    const on = await run(true);
    assert.deepEqual(on.params, off.params);
    assert.equal(off.bucketStartsInBackward, false);
    assert.equal(on.bucketStartsInBackward, true, 'with overlap a bucket must leave before backward ends');
    for (const info of on.infos) {
      const i = info as { buckets: number; bucket_comm_ms: number; overlap_ms: number };
      assert.ok(i.buckets > 2, `buckets ${i.buckets}`);
      assert.ok(i.overlap_ms >= 0 && i.overlap_ms <= i.bucket_comm_ms, JSON.stringify(i));
    }
    // And training moved the parameters (the comparison is not of two untouched models).
    const fresh = createModel({ type: 'mlp', inputDim: 12, hidden: [16, 16, 8], out: 4 }, 7).arena().params.readSync();
    assert.notDeepEqual(on.params, fresh);
  });
});
