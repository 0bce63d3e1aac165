import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';
import { curve, writeRun } from '../validate/fixtures.js';

let dir = '';
let baselines = '';
before(() => {
  dir = tempDir('baseline-cli');
  baselines = join(dir, 'baselines');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const compare = (metrics: string, ...extra: string[]): Promise<Awaited<ReturnType<typeof runCli>>> => runCli([
  'baseline', 'compare', '--metrics', metrics, '--name', 'ci', '--baseline-dir', baselines, '--latency-threshold', '10', '--throughput-threshold', '10', ...extra,
]);

describe('smolcluster baseline save / compare', () => {
  it('save writes the baseline file; compare exits 0 on the same run, 1 on a regression, 0 on an improvement', async () => {
    const run = writeRun(dir, 'run.json', { losses: curve(10), stepMs: 2 });
    const saved = await runCli(['baseline', 'save', '--metrics', run, '--name', 'ci', '--baseline-dir', baselines]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /baseline "ci" saved to .*ci\.json: 2\.000 ms\/step, 32000\.0 samples\/s/);
    const b = JSON.parse(readFileSync(join(baselines, 'ci.json'), 'utf8'));
    assert.equal(b.schema, 'smolcluster-baseline');
    assert.equal(b.metrics.average_step_time_ms, 2);

    const same = await compare(run);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    assert.match(same.stdout, /PASS: no regression/);

    const slow = writeRun(dir, 'slow.json', { losses: curve(10), stepMs: 2.5 });
    const cmp = join(dir, 'cmp.json');
    const regressed = await compare(slow, '--output', cmp);
    assert.equal(regressed.code, 1);
    assert.match(regressed.stdout, /step latency .*\+25\.0%.*REGRESSION/);
    assert.match(regressed.stdout, /throughput .*-20\.0%.*REGRESSION/);
    const j = JSON.parse(readFileSync(cmp, 'utf8'));
    assert.equal(j.schema, 'smolcluster-baseline-comparison');
    assert.equal(j.verdict, 'regression');
    assert.equal(j.regressions, 3, 'step time, throughput, total all-reduce time');

    // Twice as fast and a lower loss: improvements, never flagged, even with zero thresholds.
    const fast = writeRun(dir, 'fast.json', { losses: curve(10, 0.5), stepMs: 1 });
    const better = await runCli([
      'baseline', 'compare', '--metrics', fast, '--name', 'ci', '--baseline-dir', baselines,
      '--latency-threshold', '0', '--throughput-threshold', '0', '--loss-threshold', '0',
    ]);
    assert.equal(better.code, 0, better.stdout);
    assert.equal((better.stdout.match(/improved/g) ?? []).length, 5);

    // A higher loss is a regression only when a loss threshold is given.
    const worseLoss = writeRun(dir, 'loss.json', { losses: curve(10, 2), stepMs: 2 });
    assert.equal((await compare(worseLoss)).code, 0);
    assert.equal((await compare(worseLoss, '--loss-threshold', '5')).code, 1);
  });

  it('2: missing baseline, unreadable metrics; thresholds default to 5%', async () => {
    const run = writeRun(dir, 'r2.json', { losses: curve(3) });
    const missing = await runCli(['baseline', 'compare', '--metrics', run, '--name', 'nope', '--baseline-dir', baselines, '--latency-threshold', '5', '--throughput-threshold', '5']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json: no baseline named "nope"/);
    const garbage = join(dir, 'garbage.json');
    writeFileSync(garbage, 'not json');
    const unreadable = await runCli(['baseline', 'save', '--metrics', garbage, '--name', 'x', '--baseline-dir', baselines]);
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stderr, /garbage\.json: is not valid JSON/);
    assert.equal((await compare(join(dir, 'absent.json'))).code, 2);
    // Thresholds are optional: MiniCluster's 5% when none is given.
    const noThreshold = await runCli(['baseline', 'compare', '--metrics', run, '--name', 'ci', '--baseline-dir', baselines]);
    assert.equal(noThreshold.code, 0, noThreshold.stderr);
    assert.match(noThreshold.stdout, /^step latency \(mean\) .* 5% +- +ok$/m);
    const badName = await runCli(['baseline', 'save', '--metrics', run, '--name', '../x', '--baseline-dir', baselines]);
    assert.equal(badName.code, 2);
  });

  it('several --metrics files: saved as means with their spread; a slower run within that noise passes, naming the noise', async () => {
    const runs = [2, 1.7, 2.4].map((stepMs, i) => writeRun(dir, `rep${i}.json`, { losses: curve(10), stepMs }));
    const saved = await runCli(['baseline', 'save', '--metrics', ...runs, '--name', 'rep', '--baseline-dir', baselines]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /\(3 runs; step time 1\.700–2\.400 ms, ±17\.\d%\)/);
    const slower = writeRun(dir, 'slower.json', { losses: curve(10), stepMs: 2.3 });
    const cmp = await runCli(['baseline', 'compare', '--metrics', slower, '--name', 'rep', '--baseline-dir', baselines]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
    assert.match(cmp.stdout, /^step latency \(mean\) .* 5% +\d+\.\d% +within-noise$/m);
    assert.match(cmp.stdout, /unstable/);
  });
});
