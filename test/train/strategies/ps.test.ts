import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type StepRecord, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { type ParamServerOptions, createParamServerStrategy } from '../../../src/train/strategies/param_server.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { splitTrainTest } from '../../helpers/split.js';

const DATA = splitTrainTest(syntheticClassification({ seed: 4, samples: 700, inputShape: [1, 8, 8], numClasses: 4, noise: 3 }), 640);

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [16], batchSize: 16, maxSteps: 24, evalBatchSize: 60, lr: 0.05, ...over };
}

interface RankRun {
  steps: StepRecord[];
  outcome: TrainOutcome;
}

/** Server + workers in this process over in-process transports, each through the real loop. */
async function cluster(n: number, c: TrainConfig, opts: (rank: number) => ParamServerOptions): Promise<RankRun[]> {
  const transports = createInProcessTransports(n, { timeoutMs: 10_000 });
  try {
    return await Promise.all(transports.map(async (t, rank) => {
      const strategy = createParamServerStrategy(new ProcessGroup(t, { timeoutMs: 10_000 }), { peerTimeoutMs: 10_000, ...opts(rank) });
      const steps: StepRecord[] = [];
      // Models start from different seeds: setup must give every worker the server's.
      const outcome = await train({ ...c, seed: c.seed }, DATA, strategy, { onStep: (s) => steps.push(s) });
      await strategy.close();
      return { steps, outcome };
    }));
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}

describe('ps strategy (synchronous parameter server, in-process)', () => {
  it('server that trains + 1 worker equals one process at the global batch (weights reply)', async () => {
    const c = config({ batchSize: 8, maxSteps: 12 });
    const [server, worker] = await cluster(2, c, () => ({ serverTrains: true, stragglerMs: 10_000 }));
    const single = await train({ ...c, batchSize: 16 }, DATA, new LocalStrategy());
    assert.equal(server.steps.length, 12);
    assert.equal(worker.steps.length, 12);
    const a = server.outcome.model.arena().params.readSync();
    const b = single.model.arena().params.readSync();
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    assert.ok(diff < 1e-5, `server vs single process: max diff ${diff}`);
    assert.equal(await worker.outcome.model.arena().checksum(), await server.outcome.model.arena().checksum());
    for (const s of server.steps) {
      assert.equal(s.info?.contributors, 2);
      assert.deepEqual(s.info?.late_ranks, []);
    }
  });

  for (const reply of ['weights', 'gradients'] as const) {
    it(`a straggler's late gradients are counted and dropped; workers end identical (${reply})`, async () => {
      const c = config({ maxSteps: 16, checksumEvery: 1 } as Partial<TrainConfig>);
      const runs = await cluster(3, c, (rank) => ({ reply, stragglerMs: 30, checksumEvery: 1, slowMs: rank === 2 ? 80 : 0 }));
      const [server, fast, slow] = runs;
      if (process.env.PS_DEBUG) for (const r of runs) console.log(r.steps.map((s) => JSON.stringify(s.info)).join('\n'));
      assert.equal(server.steps.length, 16);
      const late = server.steps.filter((s) => (s.info?.late_ranks as number[]).includes(2));
      assert.ok(late.length >= 4, `rank 2 was late in only ${late.length} steps`);
      for (const s of server.steps) {
        assert.ok((s.info?.contributed_ranks as number[]).includes(1), `step ${s.step}: the fast worker did not contribute`);
        assert.equal(s.info?.contributors, (s.info?.contributed_ranks as number[]).length);
        assert.equal(s.samples, 0, 'the server trains no shard by default');
      }
      assert.equal(fast.steps.length, 16);
      assert.ok(slow.steps.length < 16, 'the straggler skips versions instead of queueing them');
      assert.ok(slow.steps.some((s) => s.info?.late === true));
      const sum = await server.outcome.model.arena().checksum();
      assert.equal(await fast.outcome.model.arena().checksum(), sum);
      assert.equal(await slow.outcome.model.arena().checksum(), sum);
      assert.ok(Number.isFinite(server.outcome.finalLoss));
    });
  }

  it('track_gradients: per-layer and global gradient norms in each record', async () => {
    const [server] = await cluster(2, config({ maxSteps: 3, trackGradients: true }), () => ({ stragglerMs: 10_000 }));
    const r = server.steps[0];
    assert.deepEqual(Object.keys(r.layerGradNorms ?? {}).sort(), ['1.bias', '1.weight', '3.bias', '3.weight'].sort());
    const global = Math.hypot(...Object.values(r.layerGradNorms!));
    assert.ok(Math.abs((r.gradNorm ?? 0) - global) < 1e-9 && global > 0);
  });
});
