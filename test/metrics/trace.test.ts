import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TRACE_STAGING_FILE, TRACKS, TraceObserver, finalizeTrace, resetTrace, stepSpans } from '../../src/metrics/trace.js';
import type { StepRecord } from '../../src/train/loop/loop.js';
import { runCliProcess, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('trace');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function step(rank: number, at: number, n: number): StepRecord {
  return {
    step: n, epoch: 0, rank, loss: 1, samples: 8, lr: 0.1, computeMs: 3, commMs: 2, waitMs: 1, time: at + 6,
    marks: { start: at, reduce: at + 2, optimizer: at + 5, afterStep: at + 5.8, end: at + 6, exchange: { waitMs: 1, commMs: 1.5 } },
  };
}

interface Span { name: string; ph: string; pid: number; tid: number; ts: number; dur: number; args?: Record<string, unknown> }

describe('trace', () => {
  it('stepSpans places each phase where the loop measured it, on its track', () => {
    const spans = stepSpans(step(1, 1000, 7)) as Span[];
    const by = Object.fromEntries(spans.map((s) => [s.name, s]));
    assert.deepEqual(Object.keys(by).sort(), ['after step', 'exchange gradients', 'forward+backward', 'optimizer', 'strategy', 'wait for peers']);
    for (const s of spans) {
      assert.equal(s.pid, 1);
      assert.equal(s.ph, 'X');
      assert.equal(s.args?.step, 7);
    }
    const at = (name: string): [number, number] => [by[name].ts / 1000, (by[name].ts + by[name].dur) / 1000];
    assert.deepEqual(at('forward+backward'), [1000, 1002]);
    assert.deepEqual(at('wait for peers'), [1002, 1003]);
    assert.deepEqual(at('strategy'), [1003, 1003.5]);
    assert.deepEqual(at('exchange gradients'), [1003.5, 1005]);
    assert.deepEqual(at('optimizer'), [1005, 1005.8]);
    assert.equal(by['wait for peers'].tid, TRACKS.wait);
    assert.equal(by['exchange gradients'].tid, TRACKS.comm);
    assert.equal(by.optimizer.tid, TRACKS.compute);
    assert.deepEqual(stepSpans({ ...step(0, 0, 0), marks: undefined }), []);
    // Overlapped gradient buckets: each on the buckets track, inside forward+backward if it began there.
    const withBuckets = step(1, 1000, 7);
    withBuckets.marks!.buckets = [{ start: 1001, end: 1002.5, floats: 10 }, { start: 1001.5, end: 1004, floats: 20 }];
    const buckets = (stepSpans(withBuckets) as Span[]).filter((s) => s.tid === TRACKS.buckets);
    assert.deepEqual(buckets.map((s) => [s.name, s.ts / 1000, (s.ts + s.dur) / 1000]), [['bucket 0 (10 floats)', 1001, 1002.5], ['bucket 1 (20 floats)', 1001.5, 1004]]);
  });

  it('observers of two ranks make one trace.json: named processes and tracks, times from the first event, a cut line skipped', () => {
    const d = join(dir, 'two');
    resetTrace(d.replace(/two$/, ''), false); // a folder without a trace: nothing to do
    const t0 = Date.now();
    for (const rank of [0, 1]) {
      const o = new TraceObserver(d, rank, `host${rank}`);
      o.onStart();
      for (let n = 0; n < 3; n++) o.onStep(step(rank, t0 + 10 * n + rank, n));
      o.onEnd();
    }
    appendFileSync(join(d, TRACE_STAGING_FILE), '{"name":"cut sho');
    const file = finalizeTrace(d);
    assert.ok(file && existsSync(file));
    assert.ok(!existsSync(join(d, TRACE_STAGING_FILE)));
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: Span[]; displayTimeUnit: string; otherData: Record<string, unknown> };
    assert.deepEqual([trace.otherData.schema, trace.otherData.schema_version], ['smolcluster-trace', 1]);
    const meta = trace.traceEvents.filter((e) => e.ph === 'M');
    assert.ok(meta.some((e) => e.name === 'process_name' && e.pid === 1 && e.args?.name === 'rank 1 (host1)'));
    assert.deepEqual(meta.filter((e) => e.name === 'thread_name' && e.pid === 0).map((e) => e.args?.name), ['compute', 'communication', 'wait', 'gradient buckets']);
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    assert.equal(spans.length, 2 * 3 * 6);
    assert.equal(Math.min(...spans.map((s) => s.ts)), 0);
    assert.equal(finalizeTrace(d), null, 'nothing left to finalize');
  });

  it('train --trace writes trace.json in the experiment folder', async () => {
    const r = await runCliProcess(['train', '--max-steps', '12', '--eval-every', '6', '--trace', '--name', 'traced', '--experiments-dir', dir, '--threads', '1'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const trace = JSON.parse(readFileSync(join(dir, 'traced', 'trace.json'), 'utf8')) as { traceEvents: Span[] };
    const fwd = trace.traceEvents.filter((e) => e.name === 'forward+backward');
    assert.deepEqual(fwd.map((e) => e.args?.step), [...Array(12).keys()]);
    // Spans of one rank never overlap on its compute track (marks are epoch ms: ~0.25 µs resolution).
    const compute = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === TRACKS.compute).sort((a, b) => a.ts - b.ts);
    for (let i = 1; i < compute.length; i++) assert.ok(compute[i].ts >= compute[i - 1].ts + compute[i - 1].dur - 1, `${compute[i - 1].name} overlaps ${compute[i].name}`);
    assert.ok(trace.traceEvents.some((e) => e.name === 'evaluation'));
  });
});
