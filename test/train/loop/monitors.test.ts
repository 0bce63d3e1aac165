import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createModel } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { defaultConfig } from '../../../src/train/run/config.js';
import { FaultInjector, parseFault } from '../../../src/train/loop/faults.js';
import { train } from '../../../src/train/loop/loop.js';
import { MonitorLog, HEALTH_WIDTH, MonitorError, RunMonitors, classify } from '../../../src/train/loop/monitors.js';
import { loadTrainData } from '../../../src/train/run/run.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { PeerError, TimeoutError } from '../../../src/util/errors.js';
import { tempDir } from '../../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('monitors');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function events(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A rank-major health vector: [ready ms, non-finite count, gradient norm] per rank. */
function health(rows: Array<[number, number, number]>): Float32Array {
  return Float32Array.from(rows.flat());
}

describe('RunMonitors: cluster rules on shared health', () => {
  it('a NaN on one rank is fatal on every rank, naming it, and recorded once (by rank 0)', () => {
    const file = join(dir, 'nan.jsonl');
    const logs = [0, 1, 2].map((r) => new MonitorLog(file, r, true));
    const mons = logs.map((l, r) => new RunMonitors(r, 3, l, true));
    const h = health([[1, 0, 1], [1, 0, 1], [1, 3, 0]]);
    for (const m of mons) {
      assert.throws(() => m.checkHealth(7, h), (e: unknown) => {
        assert.ok(e instanceof MonitorError);
        assert.equal(e.rule, 'non-finite-gradient');
        assert.deepEqual(e.ranks, [2]);
        assert.match(e.message, /non-finite gradient on rank 2 at step 7 \(NaN\/Inf values: rank 2: 3\); stopped before it was communicated/);
        return true;
      });
    }
    logs.forEach((l) => l.close());
    const lines = events(file);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].rule, 'non-finite-gradient');
    assert.equal(lines[0].observer, 0);
    assert.deepEqual(lines[0].ranks, [2]);
    assert.equal(lines[0].severity, 'fatal');
    assert.deepEqual([lines[0].schema, lines[0].schema_version], ['smolcluster-events', 1]);
    assert.equal(typeof lines[0].time, 'number');
  });

  it('straggler: needs patience consecutive slow steps (load spikes and small absolute gaps are not stragglers)', () => {
    const file = join(dir, 'straggler.jsonl');
    const log = new MonitorLog(file, 0, true);
    const m = new RunMonitors(0, 3, log, true);
    let step = 0;
    const check = (ms: number[]): void => m.checkHealth(step++, health(ms.map((x) => [x, 0, 1] as [number, number, number])));
    // A spike every other step never builds a streak.
    for (let i = 0; i < 10; i++) check(i % 2 ? [2, 90, 2] : [2, 2, 2]);
    // Ten times slower but only 9 ms more: under the absolute floor (20 ms).
    for (let i = 0; i < 10; i++) check([1, 10, 1]);
    // Four slow steps in a row, then normal: below the patience of 5.
    for (let i = 0; i < 4; i++) check([2, 60, 2]);
    check([2, 2, 2]);
    log.close();
    assert.throws(() => readFileSync(file), /ENOENT/, 'no event may have been written');
    // Five in a row: one warning naming rank 1, at the fifth step; not repeated while it stays slow.
    const first = step;
    for (let i = 0; i < 8; i++) check([2, 60, 3]);
    log.close();
    const lines = events(file);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].rule, 'straggler');
    assert.equal(lines[0].severity, 'warning');
    assert.deepEqual(lines[0].ranks, [1]);
    assert.equal(lines[0].step, first + 4);
    assert.match(String(lines[0].detail), /rank 1 is a straggler: 60\.0 ms .* median of 2\.5 ms/);
    // Recovers, then slows down again: a new episode, a new warning.
    check([2, 2, 2]);
    for (let i = 0; i < 5; i++) check([2, 2, 70]);
    log.close();
    assert.deepEqual(events(file).map((l) => l.ranks), [[1], [2]]);
  });

  it('two ranks: the slow one is compared with the other (not with a median that includes itself)', () => {
    const file = join(dir, 'two.jsonl');
    const log = new MonitorLog(file, 0, true);
    const m = new RunMonitors(0, 2, log, true);
    for (let s = 0; s < 5; s++) m.checkHealth(s, health([[1, 0, 1], [51, 0, 1]]));
    log.close();
    assert.deepEqual(events(file).map((l) => [l.rule, l.ranks]), [['straggler', [1]]]);
  });

  it('gradient outlier: a norm far above the other ranks\' median is named once per episode', () => {
    const file = join(dir, 'outlier.jsonl');
    const log = new MonitorLog(file, 0, true);
    const m = new RunMonitors(0, 3, log, true);
    m.checkHealth(0, health([[1, 0, 1.0], [1, 0, 3.0], [1, 0, 0.5]])); // 3× apart: normal shard variation
    m.checkHealth(1, health([[1, 0, 1.0], [1, 0, 900], [1, 0, 1.2]]));
    m.checkHealth(2, health([[1, 0, 1.0], [1, 0, 900], [1, 0, 1.2]]));
    log.close();
    const lines = events(file);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].rule, 'gradient-outlier');
    assert.deepEqual(lines[0].ranks, [1]);
    assert.equal(lines[0].step, 1);
  });

  it('loss: noisy batch losses (one easy batch near 0) are not a divergence; a sustained blow-up is; NaN is fatal', () => {
    const file = join(dir, 'loss.jsonl');
    const log = new MonitorLog(file, 0, true);
    const m = new RunMonitors(0, 1, log, false);
    // Converging, with per-batch noise spanning 300×: 0.001 to 0.3.
    const healthy = Array.from({ length: 60 }, (_, i) => (i < 10 ? 2 - 0.18 * i : [0.05, 0.001, 0.3, 0.08, 0.02][i % 5]));
    healthy.forEach((l, s) => m.afterStep(s, l));
    log.close();
    assert.throws(() => readFileSync(file), /ENOENT/, 'no event for a healthy run');
    // Then the loss explodes and stays up: named after 3 steps, once.
    for (let s = 60; s < 70; s++) m.afterStep(s, 50);
    assert.throws(() => m.afterStep(70, NaN), (e: unknown) => e instanceof MonitorError && e.rule === 'non-finite-loss' && /NaN at step 70/.test(e.message));
    log.close();
    assert.deepEqual(events(file).map((l) => [l.rule, l.step]), [['loss-divergence', 62], ['non-finite-loss', 70]]);
  });

  it('loss near zero: a memorised run whose loss rises from 1e-6 to 5e-4 for a few steps is not diverging; a climb back to its start is', () => {
    const file = join(dir, 'loss-zero.jsonl');
    const log = new MonitorLog(file, 0, true);
    const m = new RunMonitors(0, 1, log, false);
    // At ~1e-6 for a long stretch, then 8 batches of 5e-4: the smoothed loss is 100× its best (named before the floor).
    const memorised = Array.from({ length: 200 }, (_, i) => (i < 20 ? 3 * Math.exp(-i / 3) : i >= 150 && i < 158 ? 5e-4 : 1e-6));
    memorised.forEach((l, s) => m.afterStep(s, l));
    log.close();
    assert.throws(() => readFileSync(file), /ENOENT/, 'no divergence near zero');
    for (let s = 200; s < 260; s++) m.afterStep(s, 3);
    log.close();
    assert.deepEqual(events(file).map((l) => l.rule), ['loss-divergence']);
  });
});

describe('MonitorLog', () => {
  it('prints the same warning at most 3 times and summarises the rest at close; events.jsonl keeps every one', () => {
    const file = join(dir, 'repeats.jsonl');
    const log = new MonitorLog(file, 0);
    const printed: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => printed.push(chunk) > 0) as typeof process.stderr.write;
    try {
      for (let s = 0; s < 10; s++) log.detection({ rule: 'straggler', severity: 'warning', ranks: [1], step: s, detail: `slow at ${s}` });
      log.detection({ rule: 'straggler', severity: 'warning', ranks: [2], step: 10, detail: 'rank 2 slow' });
      log.close();
    } finally {
      process.stderr.write = write;
    }
    assert.deepEqual(printed, [
      'smolcluster: warning: slow at 0\n', 'smolcluster: warning: slow at 1\n', 'smolcluster: warning: slow at 2\n',
      'smolcluster: warning: rank 2 slow\n',
      'smolcluster: warning: straggler naming rank 1 fired 7 more times (steps 3–9); all are in events.jsonl\n',
    ]);
    assert.equal(events(file).length, 11);
  });

  it('classifies run-ending errors into rules naming the ranks, once per error', () => {
    assert.deepEqual(classify(new TimeoutError('allreduce', [1], 3000)).ranks, [1]);
    assert.equal(classify(new TimeoutError('allreduce', [1], 3000)).rule, 'peer-timeout');
    assert.deepEqual(classify(new PeerError(2, '127.0.0.1:1', 'connection lost')), {
      rule: 'peer-lost', severity: 'fatal', ranks: [2], detail: 'rank 2 (127.0.0.1:1): connection lost',
    });
    assert.equal(classify(new Error('boom')).rule, 'error');
    const file = join(dir, 'failure.jsonl');
    const log = new MonitorLog(file, 1, true);
    log.lastStep = 12;
    const err = new TimeoutError('allreduce', [0], 2000);
    log.failure(err);
    log.failure(err);
    log.close();
    const lines = events(file);
    assert.equal(lines.length, 1);
    assert.deepEqual([lines[0].rule, lines[0].ranks, lines[0].observer, lines[0].step], ['peer-timeout', [0], 1, 12]);
  });
});

describe('monitors in the training path', () => {
  const data = loadTrainData({ dataset: 'synthetic-regression', seed: 1 });
  const config = { ...defaultConfig('mlp'), dataset: 'synthetic-regression' as const, hidden: [16], optimizer: 'adam' as const, lr: 0.01, maxSteps: 12, epochs: 1 };

  it('a single process: an injected NaN stops the run at that step, naming rank 0, with the fault and the detection in events.jsonl', async () => {
    const file = join(dir, 'local.jsonl');
    const log = new MonitorLog(file, 0, true);
    const faults = new FaultInjector([parseFault('corrupt:rank=0:kind=nan:step=5')], 0, 1, log);
    const steps: number[] = [];
    await assert.rejects(
      train(config, data, new LocalStrategy(), { onStep: (r) => steps.push(r.step) }, { monitors: new RunMonitors(0, 1, log, false), faults }),
      (e: unknown) => e instanceof MonitorError && e.rule === 'non-finite-gradient' && e.step === 5 && /rank 0 at step 5/.test(e.message),
    );
    log.close();
    assert.deepEqual(steps, [0, 1, 2, 3, 4]);
    assert.deepEqual(events(file).map((l) => [l.kind, l.step]), [['fault_injected', 5], ['detection', 5]]);
  });

  it('the default monitors guard train() even when no one passes any', async () => {
    const faults = new FaultInjector([parseFault('corrupt:rank=0:kind=nan:step=2')], 0, 1);
    await assert.rejects(train(config, data, new LocalStrategy(), {}, { faults }), MonitorError);
  });

  it('allreduce: every rank stops before the NaN is averaged in, and rank 0\'s gradient is untouched', async () => {
    const transports = createInProcessTransports(2, { timeoutMs: 5000 });
    const ranks = transports.map((t, r) => {
      const model = createModel({ type: 'mlp', inputDim: 5, hidden: 4, out: 3 }, 3);
      const optimizer = makeOptimizer(model.arena(), { name: 'sgd', lr: 0.1 });
      const strategy = new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 5000 }));
      const monitors = new RunMonitors(r, 2, null, strategy.sharesHealth);
      return { strategy, ctx: { model, optimizer, monitors } };
    });
    await Promise.all(ranks.map((r) => r.strategy.setup(r.ctx)));
    const grads = ranks.map((r) => r.ctx.model.arena().grads);
    grads[0].readSync().fill(1);
    grads[1].readSync().fill(3);
    grads[1].readSync()[4] = NaN;
    await Promise.all(ranks.map((r, i) => r.ctx.monitors.beforeCommunication(9, 1, grads[i])));
    const out = await Promise.allSettled(ranks.map((r) => r.strategy.reduceGradients(r.ctx, 1, 8, 9)));
    for (const o of out) {
      assert.equal(o.status, 'rejected');
      const e = (o as PromiseRejectedResult).reason;
      assert.ok(e instanceof MonitorError, String(e));
      assert.deepEqual(e.ranks, [1]);
    }
    assert.ok(grads[0].readSync().every((g) => g === 1), 'the NaN must not have reached rank 0');
  });

  it('allreduce shares each rank\'s health in the step\'s first exchange', async () => {
    const transports = createInProcessTransports(3, { timeoutMs: 5000 });
    const seen: Float32Array[] = [];
    const ranks = transports.map((t, r) => {
      const model = createModel({ type: 'mlp', inputDim: 5, hidden: 4, out: 3 }, 3);
      const strategy = new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 5000 }));
      const monitors = new RunMonitors(r, 3, null, true);
      const check = monitors.checkHealth.bind(monitors);
      monitors.checkHealth = (step, h, who) => {
        seen[r] = h.slice();
        check(step, h, who);
      };
      return { strategy, ctx: { model, optimizer: makeOptimizer(model.arena(), { name: 'sgd', lr: 0.1 }), monitors } };
    });
    await Promise.all(ranks.map((r) => r.strategy.setup(r.ctx)));
    await Promise.all(ranks.map(async (r, i) => {
      r.ctx.model.arena().grads.readSync().fill(i + 1);
      await r.ctx.monitors.beforeCommunication(0, 10 * (i + 1), r.ctx.model.arena().grads);
    }));
    await Promise.all(ranks.map((r) => r.strategy.reduceGradients(r.ctx, 1, 4, 0)));
    const n = ranks[0].ctx.model.arena().grads.readSync().length;
    for (const h of seen) {
      assert.equal(h.length, 3 * HEALTH_WIDTH);
      for (let r = 0; r < 3; r++) {
        assert.equal(h[r * HEALTH_WIDTH], 10 * (r + 1));
        assert.equal(h[r * HEALTH_WIDTH + 1], 0);
        assert.ok(Math.abs(h[r * HEALTH_WIDTH + 2] - (r + 1) * Math.sqrt(n)) < 1e-3);
      }
    }
  });
});
