/**
 * allreduce --overlap (exchange/bucketed.ts): buckets sent while backward runs give the same bits
 * as buckets sent after it — on cpu ranks, and with a GPU rank (SwiftShader here) beside cpu
 * ranks, whose buckets are read back one by one as backward produces them. The GPU case is
 * skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createModel } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { backward } from '../../../src/tensor/autograd.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import type { StrategyContext } from '../../../src/train/strategies/strategy.js';
import { Rng } from '../../../src/util/rng.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { hostScalar } from '../../../src/train/loop/micro_batches.js';
import { hostArena } from '../../../src/train/boundary/host_arena.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const RANKS = 3;
const STEPS = 4;

/**
 * Trains RANKS in-process ranks for STEPS steps, rank r's model on devices[r]; returns rank 0's
 * parameters and the step infos. The loop's part around the strategy is done here as loop.ts
 * does it: the host copies of a GPU arena go back (flush) after the exchange and after the update.
 */
async function run(overlap: boolean, devices: string[] = ['cpu', 'cpu', 'cpu']): Promise<{ params: Float32Array; infos: unknown[]; bucketStartsInBackward: boolean }> {
  const transports = createInProcessTransports(RANKS, { timeoutMs: 30_000 });
  const ranks = transports.map((t, r) => {
    const model = createModel({ type: 'mlp', inputDim: 12, hidden: [16, 16, 8], out: 4 }, 7 + r).to(devices[r]);
    const ctx: StrategyContext = { model, optimizer: makeOptimizer(model.arena(), { name: 'sgd', lr: 0.1, momentum: 0.9 }) };
    // The ring everywhere and buckets of ~one layer: several buckets, several messages each.
    const group = new ProcessGroup(t, { timeoutMs: 30_000, directMaxBytes: 0, chunkBytes: 32 });
    return { ctx, strategy: new AllReduceStrategy(group, { bucketFloats: 150, overlap, checksumEvery: 1 }) };
  });
  await Promise.all(ranks.map(async (r) => {
    await r.strategy.setup(r.ctx);
    hostArena(r.ctx.model.arena()).flush();
  }));
  const infos: unknown[] = [];
  let bucketStartsInBackward = false;
  for (let step = 0; step < STEPS; step++) {
    await Promise.all(ranks.map(async ({ ctx, strategy }, r) => {
      ctx.model.zeroGrad();
      const rng = new Rng(1000 * step + r);
      const samples = 4 + r; // unequal shares: the weighting is exercised too
      const x = Tensor.randn([samples, 12], rng);
      const input = devices[r] === 'cpu' ? x : Tensor.from(x.values(), x.shape, 'float32', devices[r]);
      const loss = crossEntropy(ctx.model.forward(input), Int32Array.from({ length: samples }, (_, i) => (i + r) % 4));
      if (strategy.backward) await strategy.backward(ctx, loss, samples, step);
      else backward(loss);
      const backwardEnd = performance.timeOrigin + performance.now();
      const out = await strategy.reduceGradients(ctx, await hostScalar(loss), samples, step);
      const host = hostArena(ctx.model.arena());
      host.flush();
      if (r === 0) infos.push(out.info);
      if (r === 0 && out.buckets!.some((b) => b.start < backwardEnd)) bucketStartsInBackward = true;
      ctx.optimizer.step();
      await strategy.afterStep(ctx, step); // checksums: every rank must hold the same bits (or, devices mixed, rank 0's are broadcast)
      host.flush();
    }));
  }
  return { params: Float32Array.from(await ranks[0].ctx.model.arena().params.read()), infos, bucketStartsInBackward };
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

describe('gradient buckets overlapped with backward on a GPU rank beside cpu ranks', () => {
  let load: WebGpuLoad;
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => closeWebGpu());

  it('give the same parameters, bit for bit, as buckets read and sent after backward, and the cpu ranks\' within float32 rounding', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const mixed = ['webgpu', 'cpu', 'cpu'];
    const off = await run(false, mixed);
    const on = await run(true, mixed);
    assert.deepEqual(on.params, off.params);
    assert.equal(on.bucketStartsInBackward, true, 'with overlap the GPU rank\'s first bucket must leave before its backward ends');
    for (const info of on.infos) assert.ok((info as { buckets: number }).buckets > 2, JSON.stringify(info));
    const cpu = await run(false);
    let worst = 0;
    for (let i = 0; i < cpu.params.length; i++) worst = Math.max(worst, Math.abs(on.params[i] - cpu.params[i]));
    assert.ok(worst <= 1e-5, `GPU-rank run and all-cpu run differ by up to ${worst}`);
    const fresh = createModel({ type: 'mlp', inputDim: 12, hidden: [16, 16, 8], out: 4 }, 7).arena().params.readSync();
    assert.ok(on.params.some((v, i) => Math.abs(v - fresh[i]) > 1e-3), 'training moved the parameters');
    t.diagnostic(`largest difference from the all-cpu run: ${worst}`);
  });
});
