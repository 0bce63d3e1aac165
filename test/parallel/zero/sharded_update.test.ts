import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { clipGradNorm, makeOptimizer } from '../../../src/nn/optim/index.js';
import { ShardedUpdate } from '../../../src/parallel/zero/sharded_update.js';
import { Rng } from '../../../src/util/rng.js';
import { maxRelDiff } from '../../helpers/cluster.js';

const model = (): Module => createModel({ type: 'mlp', inputDim: 7, hidden: 5, out: 3 }, 11); // 58 parameters: not a multiple of 4

/** Rank r's gradient at step s: deterministic, different per rank. */
function localGrad(size: number, r: number, s: number): Float32Array {
  const rng = new Rng(1000 * s + r);
  return Float32Array.from({ length: size }, () => rng.normal());
}

describe('ZeRO-1 sharded update (reduce-scatter, shard optimizer, all-gather)', () => {
  it('4 ranks take the same Adam steps as one process on the mean gradient, with clipping, state for a quarter each', async () => {
    const N = 4;
    const steps = 3;
    const single = model();
    const arena = single.arena();
    const opt = makeOptimizer(arena, { name: 'adam', lr: 0.01 });
    for (let s = 0; s < steps; s++) {
      arena.grads.readSync().fill(0);
      for (let r = 0; r < N; r++) localGrad(arena.size, r, s).forEach((g, i) => (arena.grads.readSync()[i] += g / N));
      await clipGradNorm(arena.grads, 1.5);
      opt.step();
    }
    const groups = createInProcessTransports(N, { timeoutMs: 5000 }).map((t) => new ProcessGroup(t, { timeoutMs: 5000 }));
    const ranks = groups.map((g) => {
      const m = model();
      return { m, group: g, update: new ShardedUpdate(g, m.arena(), { name: 'adam', lr: 0.01 }) };
    });
    const norms: number[][] = [];
    for (let s = 0; s < steps; s++) {
      norms.push(await Promise.all(ranks.map(async ({ m, group, update }) => {
        m.arena().grads.readSync().set(localGrad(m.arena().size, group.rank, s));
        await update.reduceScatterGradients(N);
        const norm = await update.clipGradNorm(1.5);
        await update.step(0.01);
        return norm;
      })));
    }
    for (const { m, update } of ranks) {
      const d = maxRelDiff(m.arena().params.readSync(), arena.params.readSync());
      assert.ok(d < 1e-5, `rank ${update.range}: parameters differ from one process by ${d}`);
      assert.equal(update.stateFloats(), 2 * (update.range[1] - update.range[0]), 'Adam state for the shard only');
      assert.ok(update.stateFloats() <= 2 * Math.ceil(arena.size / N));
    }
    for (const n of norms) assert.ok(n.every((x) => x === n[0]) && n[0] > 1.5, `every rank sees the same global norm: ${n}`);
    // Against a plain step: the sharded one really updated every range (a rank that skipped would differ).
    assert.ok(maxRelDiff(ranks[3].m.arena().params.readSync(), model().arena().params.readSync()) > 1e-4);
  });

  it('sends what one ring all-reduce of the gradient sends (reduce-scatter + all-gather)', async () => {
    const N = 4;
    const size = model().arena().size;
    const plain = createInProcessTransports(N, { timeoutMs: 5000 }).map((t) => new ProcessGroup(t, { timeoutMs: 5000 }));
    await Promise.all(plain.map((g) => g.allReduce(localGrad(size, g.rank, 0), { op: 'sum' })));
    const zero = createInProcessTransports(N, { timeoutMs: 5000 }).map((t) => new ProcessGroup(t, { timeoutMs: 5000 }));
    await Promise.all(zero.map(async (g) => {
      const m = model();
      const u = new ShardedUpdate(g, m.arena(), { name: 'sgd', lr: 0.1 });
      m.arena().grads.readSync().set(localGrad(size, g.rank, 0));
      await u.reduceScatterGradients(N);
      await u.step(0.1);
    }));
    const total = (gs: ProcessGroup[]): number => gs.reduce((n, g) => n + g.bytesSent, 0);
    assert.ok(total(plain) > 0);
    assert.ok(total(zero) <= total(plain) * 1.01 + 64 * N, `ZeRO-1 sent ${total(zero)} bytes, all-reduce ${total(plain)}`);
  });
});
