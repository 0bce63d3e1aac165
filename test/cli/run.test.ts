import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Dataset, RegressionDataset } from '../../src/data/dataset.js';
import { SYNTHETIC_REGRESSION, loadTrainData } from '../../src/train/run/run.js';
import type { RunFile } from '../../src/validate/run_file.js';
import { runCliProcess, stepRecords, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('run-cli');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const common = (name: string): string[] => ['--threads', '1', '--timeout', '20', '--experiments-dir', dir, '--name', name];

describe('smolcluster run', { timeout: 120_000 }, () => {
  it('the synthetic set follows --seed: data, teacher and all', () => {
    const a = loadTrainData({ dataset: 'synthetic-regression', seed: 1 });
    const b = loadTrainData({ dataset: 'synthetic-regression', seed: 1 });
    const c = loadTrainData({ dataset: 'synthetic-regression', seed: 2 });
    assert.equal(a.train.size, SYNTHETIC_REGRESSION.train);
    assert.equal(a.test.size, SYNTHETIC_REGRESSION.test);
    assert.equal(a.train.task, 'regression');
    const inputs = (d: Dataset): Float32Array => (d as RegressionDataset).inputs;
    assert.deepEqual(inputs(a.train), inputs(b.train));
    assert.notDeepEqual(inputs(a.train).subarray(0, 16), inputs(c.train).subarray(0, 16));
  });

  it('2 workers: run.json with per-step, per-rank measurements taken from metrics.jsonl', async () => {
    const out = join(dir, 'multi.json');
    const exit = await runCliProcess(['run', '--workers', '2', '--steps', '12', '--batch-size', '8', '--seed', '5', '--output', out, ...common('multi')], { timeoutMs: 90_000 });
    assert.equal(exit.code, 0, exit.stderr);
    assert.match(exit.stdout, /run\.json: 12 steps × 16 samples \(allreduce, 2 workers\)/);
    const r = JSON.parse(readFileSync(out, 'utf8')) as RunFile;
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'multi', 'run.json'), 'utf8')), r);
    assert.deepEqual([r.schema, r.schema_version, r.strategy, r.dataset, r.seed], ['smolcluster-run', 1, 'allreduce', 'synthetic-regression', 5]);
    assert.deepEqual([r.num_workers, r.num_steps, r.batch_size_per_worker, r.global_batch_size, r.total_samples], [2, 12, 8, 16, 192]);
    assert.equal(r.config.optimizer, 'adam');
    const raw = stepRecords(join(dir, 'multi', 'metrics.jsonl'));
    for (const s of r.steps) {
      assert.equal(s.ranks.length, 2);
      for (const k of ['loss', 'step_time_ms', 'throughput_samples_per_sec', 'compute_time_ms', 'allreduce_time_ms', 'wait_time_ms'] as const) {
        assert.ok(Number.isFinite(s[k]) && s[k] >= 0, `step ${s.step} ${k} = ${s[k]}`);
      }
      // Exactly what the ranks recorded for this step.
      for (const rk of s.ranks) {
        const line = raw.find((l) => l.step === s.step && l.rank === rk.rank)!;
        assert.deepEqual([rk.compute_ms, rk.allreduce_ms, rk.wait_ms, rk.samples], [line.compute_ms, line.comm_ms, line.wait_ms, line.samples]);
        assert.equal(s.loss, line.loss);
      }
    }
    // Measured per step, not an average copied into every step.
    assert.ok(new Set(r.steps.map((s) => s.compute_time_ms)).size > 1);
    assert.ok(r.steps.some((s) => s.allreduce_time_ms > 0));
    const total = r.steps.reduce((a, s) => a + s.step_time_ms, 0);
    assert.ok(Math.abs(total / 1000 - r.total_time_sec) < 1e-3);
    assert.equal(r.final_loss, r.steps[11].loss);
    assert.equal(r.per_rank.length, 2);
    assert.deepEqual(r.per_rank.map((p) => p.samples), [96, 96]);
    assert.ok(r.environment.node.startsWith('v') && r.environment.backend.length > 0 && r.environment.host.cpus > 0);
    assert.ok(Date.parse(r.started_at) <= Date.parse(r.ended_at));
  });

  it('--strategy local with several workers is refused; a failed cluster writes no run.json', async () => {
    const refused = await runCliProcess(['run', '--workers', '2', '--strategy', 'local', '--steps', '3', ...common('refused')]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /local trains in one process; use allreduce/);
    const out = join(dir, 'failed.json');
    const failed = await runCliProcess(['run', '--workers', '2', '--steps', '20', '--fault', 'kill:rank=1:step=3', '--output', out, ...common('failed')], { timeoutMs: 90_000 });
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /worker rank 1 was killed by SIGKILL/);
    assert.match(failed.stderr, /the run failed; no run\.json written/);
    assert.equal(existsSync(out), false);
  });
});
