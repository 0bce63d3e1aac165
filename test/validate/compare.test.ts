import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareRuns, formatValidation } from '../../src/validate/compare.js';
import { curve, fakeRun } from './fixtures.js';

const opts = { tolerance: 0.01, absTolerance: 1e-6 };
const ref = (losses: number[]) => ({ file: 'single.json', run: fakeRun({ losses }) });
const cand = (losses: number[], extra = {}) => ({ file: 'multi.json', run: fakeRun({ losses, workers: 2, ...extra }) });

describe('compareRuns', () => {
  it('identical up to float noise: every step passes, deltas reported', () => {
    const a = curve(20);
    const b = a.map((x, i) => x * (1 + (i % 3 === 0 ? 1e-7 : -1e-7)));
    const r = compareRuns(ref(a), cand(b), opts);
    assert.equal(r.summary.verdict, 'pass');
    assert.equal(r.summary.steps_compared, 20);
    assert.equal(r.summary.failed, 0);
    assert.ok(r.summary.max_rel_delta! > 0 && r.summary.max_rel_delta! < 2e-7);
    assert.deepEqual(r.summary.reasons, []);
    assert.equal(r.steps[3].step, 3);
    assert.ok(Math.abs(r.steps[3].abs_delta! - a[3] * 1e-7) < 1e-12);
    assert.equal(r.schema, 'smolcluster-validation');
    assert.equal(r.schema_version, 1);
  });

  it('a step beyond the relative tolerance fails, and only that step', () => {
    const a = curve(10);
    const b = [...a];
    b[6] = a[6] * 1.02;
    const r = compareRuns(ref(a), cand(b), opts);
    assert.equal(r.summary.verdict, 'fail');
    assert.equal(r.summary.failed, 1);
    assert.equal(r.summary.first_failed_step, 6);
    assert.deepEqual(r.steps.filter((s) => !s.pass).map((s) => s.step), [6]);
    assert.ok(Math.abs(r.steps[6].rel_delta! - 0.02) < 1e-9);
    assert.match(r.summary.reasons[0], /1 of 10 steps differ by more than the tolerance \(first: step 6\)/);
  });

  it('the tolerance is inclusive, and tiny losses pass on the absolute floor', () => {
    const r = compareRuns(ref([1, 1e-9]), cand([1.005, 2e-9]), { tolerance: 0.005, absTolerance: 1e-6 });
    assert.deepEqual(r.steps.map((s) => s.pass), [true, true]);
    const strict = compareRuns(ref([1e-9]), cand([2e-9]), { tolerance: 0.005, absTolerance: 0 });
    assert.equal(strict.summary.verdict, 'fail');
  });

  it('differing step counts fail even when the shared steps agree', () => {
    const a = curve(10);
    const r = compareRuns(ref(a), cand(a.slice(0, 8)), opts);
    assert.equal(r.summary.verdict, 'fail');
    assert.equal(r.summary.failed, 0);
    assert.equal(r.summary.steps_compared, 8);
    assert.match(r.summary.reasons.join(), /step counts differ: 10 in single\.json, 8 in multi\.json/);
  });

  it('a diverged (null) loss fails its step', () => {
    const r = compareRuns(ref([1, 0.9]), cand([1, null as unknown as number]), opts);
    assert.deepEqual(r.steps.map((s) => s.pass), [true, false]);
    assert.equal(r.summary.max_abs_delta, null);
  });

  it('notes a global batch mismatch without failing on it', () => {
    const r = compareRuns(ref(curve(4)), cand(curve(4), { globalBatch: 32 }), opts);
    assert.equal(r.summary.verdict, 'pass');
    assert.equal(r.summary.notes.length, 1);
    assert.match(r.summary.notes[0], /^global batch sizes differ \(64 = 1 × 64 vs 32 = 2 × 16\), .*--batch-size is per worker, minicluster run's is the global batch/);
    assert.doesNotMatch(r.summary.notes[0], /\n/, 'one line');
  });

  it('the text report: both runs, a step table, the verdict line', () => {
    const a = curve(50);
    const pass = formatValidation(compareRuns(ref(a), cand(a), opts));
    assert.match(pass, /^reference single\.json: local, 1 worker, global batch 64, 50 steps$/m);
    assert.match(pass, /^candidate multi\.json: allreduce, 2 workers, global batch 64, 50 steps$/m);
    assert.match(pass, /^step\s+reference\s+candidate\s+abs delta\s+rel delta$/m);
    assert.match(pass, /^49\s/m, 'the last step is shown');
    assert.match(pass, /50\/50 steps within tolerance/);
    assert.match(pass, /\nPASS\n$/);
    const b = [...a];
    b[10] *= 2;
    const fail = formatValidation(compareRuns(ref(a), cand(b), opts));
    assert.match(fail, /^10\s.*FAIL$/m);
    assert.doesNotMatch(fail, /^11\s/m, 'only failing steps are listed when some fail');
    assert.match(fail, /\nFAIL: 1 of 50 steps differ/);
  });
});
