import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Baseline, METRICS, compareToBaseline, formatComparison, makeBaseline } from '../../src/validate/baseline.js';
import { fakeRun } from './fixtures.js';

function base(stepMs: number, finalLoss = 0.1): { file: string; baseline: Baseline } {
  return { file: 'b.json', baseline: makeBaseline('ci', 'run.json', fakeRun({ losses: [1, finalLoss], stepMs })) };
}
const now = (stepMs: number, finalLoss = 0.1, extra = {}) => ({ file: 'now.json', run: fakeRun({ losses: [1, finalLoss], stepMs, ...extra }) });
const status = (c: ReturnType<typeof compareToBaseline>): Record<string, string> => Object.fromEntries(c.metrics.map((m) => [m.metric, m.status]));

describe('baseline comparison', () => {
  it('every metric knows its direction', () => {
    assert.deepEqual(METRICS.map((m) => [m.key, m.better]), [
      ['average_step_time_ms', 'lower'], ['average_throughput_samples_per_sec', 'higher'], ['final_loss', 'lower'],
      ['average_loss', 'lower'], ['total_allreduce_time_ms', 'lower'],
    ]);
  });

  it('slower steps are a latency and a throughput regression beyond the thresholds', () => {
    const c = compareToBaseline(base(2), now(2.5), { latency: 10, throughput: 10 });
    assert.deepEqual(status(c), {
      average_step_time_ms: 'regression', average_throughput_samples_per_sec: 'regression', final_loss: 'not-checked',
      average_loss: 'not-checked', total_allreduce_time_ms: 'regression',
    });
    assert.equal(c.regressions, 3);
    assert.equal(c.verdict, 'regression');
    const lat = c.metrics[0];
    assert.ok(Math.abs(lat.change_pct - 25) < 1e-9 && Math.abs(lat.worse_pct - 25) < 1e-9);
    const thr = c.metrics[1];
    assert.ok(Math.abs(thr.change_pct + 20) < 1e-9 && Math.abs(thr.worse_pct - 20) < 1e-9);
  });

  it('an improvement in any direction is never flagged, however large', () => {
    const c = compareToBaseline(base(2, 0.5), now(1, 0.05), { latency: 0, throughput: 0, loss: 0 });
    assert.deepEqual(status(c), {
      average_step_time_ms: 'improved', average_throughput_samples_per_sec: 'improved', final_loss: 'improved', average_loss: 'improved', total_allreduce_time_ms: 'improved',
    });
    assert.equal(c.verdict, 'pass');
  });

  it('within the threshold is ok; loss is checked only with a threshold', () => {
    const c = compareToBaseline(base(2, 0.1), now(2.1, 0.2), { latency: 10, throughput: 10 });
    assert.deepEqual(status(c), {
      average_step_time_ms: 'ok', average_throughput_samples_per_sec: 'ok', final_loss: 'not-checked', average_loss: 'not-checked', total_allreduce_time_ms: 'ok',
    });
    const withLoss = compareToBaseline(base(2, 0.1), now(2.1, 0.2), { latency: 10, throughput: 10, loss: 50 });
    assert.equal(status(withLoss).final_loss, 'regression');
  });

  it('a baseline saved before average_loss and total_allreduce_time_ms compares the rest and says so', () => {
    const old = base(2);
    const { average_loss: _a, total_allreduce_time_ms: _t, ...metrics } = old.baseline.metrics;
    const c = compareToBaseline({ ...old, baseline: { ...old.baseline, metrics: metrics as Baseline['metrics'] } }, now(2.5), { latency: 10, throughput: 10 });
    assert.deepEqual(c.metrics.map((m) => m.metric), ['average_step_time_ms', 'average_throughput_samples_per_sec', 'final_loss']);
    assert.match(c.notes.join('\n'), /total_allreduce_time_ms not compared: the baseline or the run does not record it/);
  });

  it('notes a different context (workers, model, ...)', () => {
    const c = compareToBaseline(base(2), now(2, 0.1, { workers: 2 }), { latency: 10, throughput: 10 });
    assert.match(c.notes.join('\n'), /num_workers differs from the baseline's \(1 → 2\)/);
  });

  it('the text report: a row per metric with direction, threshold and status', () => {
    const text = formatComparison(compareToBaseline(base(2), now(2.5), { latency: 10, throughput: 30 }));
    assert.match(text, /^step latency \(mean\) \(ms\)\s+2\.000\s+2\.500\s+\+25\.0%\s+lower is better\s+10%\s+REGRESSION$/m);
    assert.match(text, /^throughput \(samples\/s\)\s+32000\.0\s+25600\.0\s+-20\.0%\s+higher is better\s+30%\s+ok$/m);
    assert.match(text, /^final loss .* not-checked$/m);
    assert.match(text, /\nFAIL: 2 regressions\n$/);
  });
});
