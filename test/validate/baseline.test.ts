import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Baseline, METRICS, compareToBaseline, formatComparison, makeBaseline } from '../../src/validate/baseline.js';
import { noisePct, spreadOf, t95 } from '../../src/validate/noise.js';
import { fakeRun } from './fixtures.js';

function base(stepMs: number, finalLoss = 0.1): { file: string; baseline: Baseline } {
  return { file: 'b.json', baseline: makeBaseline('ci', [{ file: 'run.json', run: fakeRun({ losses: [1, finalLoss], stepMs }) }]) };
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
    assert.match(text, /^step latency \(mean\) \(ms\)\s+2\.000\s+2\.500\s+\+25\.0%\s+lower is better\s+10%\s+-\s+REGRESSION$/m);
    assert.match(text, /^throughput \(samples\/s\)\s+32000\.0\s+25600\.0\s+-20\.0%\s+higher is better\s+30%\s+-\s+ok$/m);
    assert.match(text, /noise not measured: the baseline and the run are one run each/);
    assert.match(text, /^final loss .* not-checked$/m);
    assert.match(text, /\nFAIL: 2 regressions\n$/);
  });

  const repeats = (stepsMs: number[], prefix: string) => stepsMs.map((stepMs, i) => ({ file: `${prefix}${i}.json`, run: fakeRun({ losses: [1, 0.1], stepMs }) }));

  it('saved from repeats: the means and their spread; a change within the noise is not a regression', () => {
    // Unchanged code measured five times on a busy machine: step time 1.6 to 2.5 ms.
    const b = makeBaseline('noisy', repeats([2, 1.6, 2.5, 1.9, 2.0], 'b'));
    assert.ok(Math.abs(b.metrics.average_step_time_ms - 2) < 1e-12);
    assert.equal(b.spread!.average_step_time_ms!.n, 5);
    assert.deepEqual(b.runs, ['b0.json', 'b1.json', 'b2.json', 'b3.json', 'b4.json']);
    const base5 = { file: 'noisy.json', baseline: b };
    const c = compareToBaseline(base5, repeats([2.4], 'now'), { latency: 5, throughput: 5 });
    const latency = c.metrics[0];
    assert.ok(latency.worse_pct > 5 && latency.noise_pct! > latency.worse_pct, `+20% within noise ${latency.noise_pct}%`);
    assert.equal(latency.status, 'within-noise');
    assert.equal(c.verdict, 'pass');
    assert.match(c.notes.join('\n'), /step latency \(mean\) varied 16\.\d% \(standard deviation over 5 runs\) in the baseline's runs: unstable/);
    // Twice as slow is beyond any noise these runs showed.
    assert.equal(compareToBaseline(base5, repeats([4, 4.1, 3.9], 'slow'), { latency: 5, throughput: 5 }).metrics[0].status, 'regression');
  });

  it('the noise is a 95% t-test on the difference of the means', () => {
    const base = spreadOf([10, 12, 8]); // stdev 2, n 3
    // One current run borrows the baseline's per-run deviation: 4.303 · sqrt(4/3 + 4) / 10 = 99.4%.
    assert.ok(Math.abs(noisePct(base, spreadOf([11]))! - (100 * 4.303 * Math.sqrt(4 / 3 + 4)) / 10) < 1e-9);
    // Both repeated: df 4, t 2.776.
    assert.ok(Math.abs(noisePct(base, spreadOf([10, 12, 8]))! - (100 * 2.776 * Math.sqrt(8 / 3)) / 10) < 1e-9);
    assert.equal(noisePct(spreadOf([10]), spreadOf([11])), null, 'one run each: unmeasured');
    assert.equal(t95(1), 12.706);
    assert.equal(t95(100), 1.96);
  });

  it('refuses run files that are not repeats of one configuration, naming the field', () => {
    const other = { file: 'w2.json', run: fakeRun({ losses: [1, 0.1], stepMs: 2, workers: 2 }) };
    assert.throws(() => makeBaseline('x', [...repeats([2], 'a'), other]), /w2\.json: is not a repeat of a0\.json: strategy allreduce vs local/);
  });
});
