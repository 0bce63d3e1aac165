/**
 * The `minicluster` binary runs MiniCluster's README recipes verbatim (steps shortened): run with a
 * GLOBAL --batch-size at 1 and 2 workers, validate, baseline save/compare in .minicluster/baselines
 * with its default thresholds, fault-test --tolerance; report files carry MiniCluster's field names.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { MINICLUSTER_CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/cluster.js';

let cwd = '';
const mini = (args: string[], timeoutMs = 120_000) => runCli(args, { entry: MINICLUSTER_CLI, cwd, timeoutMs });
const json = (file: string) => JSON.parse(readFileSync(join(cwd, file), 'utf8'));

before(() => {
  cwd = tempDir('minicluster');
});

describe('minicluster (MiniCluster\'s commands over smolcluster)', { timeout: 240_000 }, () => {
  it('run --workers 1 and --workers 2 at --batch-size 32 (the global batch) validate; baselines compare at 5%', async () => {
    const single = await mini(['run', '--workers', '1', '--steps', '12', '--batch-size', '32', '--output', 'single_process.json']);
    assert.equal(single.code, 0, single.stderr);
    const multi = await mini(['run', '--workers', '2', '--steps', '12', '--batch-size', '32', '--output', 'results/multi_process.json']);
    assert.equal(multi.code, 0, multi.stderr);
    const [s, m] = [json('single_process.json'), json('results/multi_process.json')];
    assert.deepEqual([s.global_batch_size, s.batch_size_per_worker, m.global_batch_size, m.batch_size_per_worker, m.num_workers], [32, 32, 32, 16, 2]);
    assert.equal(s.seed, 42, 'MiniCluster\'s default seed');
    assert.equal(m.start_timestamp, m.started_at);
    assert.equal(typeof m.end_timestamp, 'string');

    const v = await mini(['validate', 'single_process.json', 'results/multi_process.json', '--tolerance', '0.01', '--output', 'reports/validation_report.json']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(json('reports/validation_report.json').summary.verdict, 'pass');

    const saved = await mini(['baseline', 'save', '--metrics', 'results/multi_process.json', '--name', 'stable_v1']);
    assert.equal(saved.code, 0, saved.stderr);
    assert.ok(existsSync(join(cwd, '.minicluster/baselines/stable_v1.json')), 'MiniCluster\'s baseline folder');
    const cmp = await mini(['baseline', 'compare', '--metrics', 'results/multi_process.json', '--name', 'stable_v1', '--output', 'cmp/comparison_report.json']);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
    const rows = Object.fromEntries(json('cmp/comparison_report.json').metrics.map((r: { metric: string; threshold_pct: number | null }) => [r.metric, r.threshold_pct]));
    assert.deepEqual(rows, { average_step_time_ms: 5, average_throughput_samples_per_sec: 5, final_loss: 5, average_loss: 5, total_allreduce_time_ms: 5 });
    const missing = await mini(['baseline', 'compare', '--metrics', 'single_process.json', '--name', 'nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /minicluster baseline save/);
  });

  it('a global batch that does not split over the workers is refused naming --batch-size', async () => {
    const r = await mini(['run', '--workers', '3', '--steps', '2', '--batch-size', '32']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--batch-size.*32 does not split evenly over 3 workers/);
    assert.match(r.stderr, /^minicluster: error: /, 'errors begin with the name the user typed');
  });

  it('fault-test --tolerance: the fault-free run beside the faulty one; num_detected / num_faults as MiniCluster\'s jq reads it', async () => {
    const r = await mini(['fault-test', '--only', 'corrupt-noise', '--steps', '20', '--tolerance', '0.01', '--experiments-dir', 'ft', '--output', 'out/fault_report.json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = json('out/fault_report.json');
    assert.equal(report.num_detected / report.num_faults, 1);
    assert.equal(report.detection_rate, 1);
    assert.equal(report.reference_run.steps, 20);
    const d = report.scenarios[0].loss_divergence;
    assert.equal(d.beyond_tolerance, true, JSON.stringify(d));
    assert.ok(d.first_step_beyond >= report.scenarios[0].injected_step, JSON.stringify(d));
    const help = await mini(['fault-test', '--help']);
    assert.match(help.stdout.replace(/\s+/g, ' '), /default: slow, corrupt-noise, hang/);
  });
});
