import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createModel } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { DiLoCoStrategy } from '../../../src/train/strategies/diloco.js';
import { createLocalSgdStrategy } from '../../../src/train/strategies/local_sgd.js';
import type { StrategyContext } from '../../../src/train/strategies/strategy.js';
import { runCliProcess, stepRecords, tempDir } from '../../helpers/cluster.js';

const H = 3;

function world(make: (g: ProcessGroup) => DiLoCoStrategy): Array<{ ctx: StrategyContext; strategy: DiLoCoStrategy }> {
  return createInProcessTransports(2, { timeoutMs: 5000 }).map((t, r) => {
    const model = createModel({ type: 'mlp', inputDim: 4, hidden: 3, out: 2 }, 10 + r);
    return { ctx: { model, optimizer: makeOptimizer(model.arena(), { name: 'sgd', lr: 0.1, momentum: 0 }), totalSteps: 2 * H }, strategy: make(new ProcessGroup(t, { timeoutMs: 5000 })) };
  });
}

/** Each rank's own gradient: constant per rank, so a rank's local steps are predictable. */
const gradFor = (r: number, n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => (r + 1) * Math.cos(i));

async function step(w: ReturnType<typeof world>, s: number): Promise<Array<Record<string, unknown>>> {
  return Promise.all(w.map(async ({ ctx, strategy }, r) => {
    ctx.model.arena().grads.readSync().set(gradFor(r, ctx.model.arena().size));
    const out = await strategy.applyUpdate(ctx, s);
    return out.info as Record<string, unknown>;
  }));
}

describe('DiLoCo and local SGD (in-process)', () => {
  it('local SGD: H local steps with no bytes sent, then every rank holds the average of the ranks\' parameters', async () => {
    const w = world((g) => createLocalSgdStrategy(g, H));
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    const start = w[0].ctx.model.arena().params.readSync().slice();
    for (let s = 0; s < H; s++) {
      const infos = await step(w, s);
      for (const i of infos) assert.deepEqual([i.synced, i.bytes_sent === 0], [s === H - 1, s < H - 1]);
    }
    const n = start.length;
    // SGD without momentum: rank r moved by -lr * H * g_r; the average is the mean of the two.
    const expected = start.map((p, i) => p - (0.1 * H * (gradFor(0, n)[i] + gradFor(1, n)[i])) / 2);
    const got = w.map((r) => r.ctx.model.arena().params.readSync());
    assert.deepEqual(got[0], got[1]);
    got[0].forEach((p, i) => assert.ok(Math.abs(p - expected[i]) < 1e-5, `[${i}] ${p} vs ${expected[i]}`));
  });

  it('DiLoCo: the outer Nesterov step from the snapshot, the same on every rank; the last step always syncs', async () => {
    const w = world((g) => new DiLoCoStrategy(g, { innerSteps: H, outerLr: 0.5, outerMomentum: 0.9 }));
    await Promise.all(w.map((r) => r.strategy.setup(r.ctx)));
    const start = w[0].ctx.model.arena().params.readSync().slice();
    const n = start.length;
    const delta = start.map((_, i) => (0.1 * H * (gradFor(0, n)[i] + gradFor(1, n)[i])) / 2);
    for (let s = 0; s < H; s++) await step(w, s);
    // v = delta; update = delta + 0.9 v = 1.9 delta.
    const first = start.map((p, i) => p - 0.5 * 1.9 * delta[i]);
    w[0].ctx.model.arena().params.readSync().forEach((p, i) => assert.ok(Math.abs(p - first[i]) < 1e-5, `[${i}] ${p} vs ${first[i]}`));
    for (let s = H; s < 2 * H; s++) await step(w, s);
    // v = 0.9 delta + delta = 1.9 delta; update = delta + 0.9 · 1.9 delta = 2.71 delta.
    const second = first.map((p, i) => p - 0.5 * 2.71 * delta[i]);
    w[0].ctx.model.arena().params.readSync().forEach((p, i) => assert.ok(Math.abs(p - second[i]) < 1e-5, `[${i}] ${p} vs ${second[i]}`));
    assert.deepEqual(w[0].ctx.model.arena().params.readSync(), w[1].ctx.model.arena().params.readSync());
  });

  it('refuses --inner-steps 0 and an outer momentum of 1, naming the flag', () => {
    const [t] = createInProcessTransports(1, { timeoutMs: 1000 });
    assert.throws(() => new DiLoCoStrategy(new ProcessGroup(t), { innerSteps: 0 }), /--inner-steps/);
    assert.throws(() => new DiLoCoStrategy(new ProcessGroup(t), { innerSteps: 2, outerMomentum: 1 }), /--outer-momentum/);
  });
});

describe('train --strategy diloco (CLI, 2 workers on 127.0.0.1)', { timeout: 90_000 }, () => {
  it('syncs every H steps and only then writes bytes; the workers end identical', async () => {
    const dir = tempDir('diloco');
    try {
      const args = ['train', '--workers', '2', '--strategy', 'diloco', '--inner-steps', '4', '--dataset', 'synthetic-regression', '--max-steps', '10',
        '--threads', '1', '--timeout', '20', '--name', 'd', '--experiments-dir', dir];
      const exit = await runCliProcess(args, { timeoutMs: 60_000 });
      assert.equal(exit.code, 0, exit.stderr);
      for (const rank of [0, 1]) {
        const steps = stepRecords(join(dir, 'd', 'metrics.jsonl'), rank) as unknown as Array<{ step: number; synced: boolean; bytes_sent: number }>;
        assert.deepEqual(steps.filter((s) => s.synced).map((s) => s.step), [3, 7, 9]);
        for (const s of steps) assert.equal(s.bytes_sent > 0, s.synced, `rank ${rank} step ${s.step}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
