import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultConfig } from '../../src/train/run/config.js';
import { InputError } from '../../src/validate/files.js';
import { buildRunFile, readRunFile } from '../../src/validate/run_file.js';
import { tempDir } from '../helpers/cluster.js';
import { writeRun } from './fixtures.js';

let dir = '';
before(() => {
  dir = tempDir('runfile');
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Line {
  step: number;
  rank: number;
  loss: number;
  samples: number;
  compute_ms: number;
  comm_ms: number;
  wait_ms: number;
}

function experiment(name: string, lines: Line[], steps: number, workers = 2): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const config = { ...defaultConfig('mlp'), dataset: 'synthetic-regression', batchSize: 16, seed: 4 };
  writeFileSync(join(d, 'result.json'), JSON.stringify({
    schema: 'smolcluster-train-result', schema_version: 1, model: 'mlp 16-128-4', steps, workers, strategy: 'allreduce',
    wall_seconds: 2.5, backend: 'js', threads: 1, started_at: 'a', ended_at: 'b', test_loss: 0.5, test_accuracy: null,
    host: { hostname: 'h', platform: 'linux', arch: 'x64', cpus: 2, node: 'v20' }, config,
  }));
  const text = lines.map((l, i) => JSON.stringify({ v: 1, kind: 'step', epoch: 0, lr: 0.01, time: 1000 + i, ...l }));
  text.splice(1, 0, JSON.stringify({ v: 1, kind: 'eval', step: 1, rank: 0, test_loss: 1, time: 5 }));
  writeFileSync(join(d, 'metrics.jsonl'), `${text.join('\n')}\n`);
  return d;
}

// Two ranks, three steps, written out of order (as ranks append them), each step's numbers its own.
const LINES: Line[] = [
  { step: 1, rank: 1, loss: 0.8, samples: 16, compute_ms: 5, comm_ms: 1, wait_ms: 0 },
  { step: 0, rank: 0, loss: 1.0, samples: 16, compute_ms: 2, comm_ms: 1, wait_ms: 3 },
  { step: 0, rank: 1, loss: 1.0, samples: 16, compute_ms: 4, comm_ms: 1, wait_ms: 0 },
  { step: 1, rank: 0, loss: 0.8, samples: 16, compute_ms: 2, comm_ms: 2, wait_ms: 2 },
  { step: 2, rank: 0, loss: 0.6, samples: 8, compute_ms: 1, comm_ms: 1, wait_ms: 0 },
  { step: 2, rank: 1, loss: 0.6, samples: 8, compute_ms: 1, comm_ms: 1, wait_ms: 0 },
];

describe('run.json from an experiment folder', () => {
  it('per-step values come from that step\'s records of every rank', () => {
    const r = buildRunFile(experiment('ok', LINES, 3));
    assert.equal(r.schema, 'smolcluster-run');
    assert.equal(r.schema_version, 1);
    assert.deepEqual(r.steps.map((s) => s.step), [0, 1, 2]);
    assert.deepEqual(r.steps.map((s) => s.loss), [1.0, 0.8, 0.6]);
    assert.deepEqual(r.steps.map((s) => s.samples), [32, 32, 16]);
    // Step time: the longest rank (rank 0: 2+1+3 = 6; step 1: rank 0 6, rank 1 6; step 2: 2).
    assert.deepEqual(r.steps.map((s) => s.step_time_ms), [6, 6, 2]);
    assert.deepEqual(r.steps.map((s) => s.throughput_samples_per_sec), [32 / 0.006, 32 / 0.006, 16 / 0.002].map((x) => Math.round(x * 1000) / 1000));
    assert.deepEqual(r.steps.map((s) => s.compute_time_ms), [3, 3.5, 1]);
    assert.deepEqual(r.steps.map((s) => s.allreduce_time_ms), [1, 1.5, 1]);
    assert.deepEqual(r.steps.map((s) => s.wait_time_ms), [1.5, 1, 0]);
    assert.deepEqual(r.steps[0].ranks, [
      { rank: 0, samples: 16, compute_ms: 2, allreduce_ms: 1, wait_ms: 3 },
      { rank: 1, samples: 16, compute_ms: 4, allreduce_ms: 1, wait_ms: 0 },
    ]);
    assert.deepEqual([r.num_workers, r.num_steps, r.total_samples, r.global_batch_size, r.batch_size_per_worker], [2, 3, 80, 32, 16]);
    assert.equal(r.total_time_sec, 0.014);
    assert.equal(r.average_step_time_ms, Math.round((14 / 3) * 1000) / 1000);
    assert.equal(r.average_throughput_samples_per_sec, Math.round((80 / 0.014) * 1000) / 1000);
    assert.equal(r.final_loss, 0.6);
    assert.ok(Math.abs(r.average_loss - 0.8) < 1e-12);
    assert.deepEqual([r.total_compute_time_ms, r.total_allreduce_time_ms, r.total_wait_time_ms], [7.5, 3.5, 2.5]);
    assert.deepEqual(r.per_rank, [
      { rank: 0, samples: 40, train_time_sec: 0.014, compute_time_ms: 5, allreduce_time_ms: 4, wait_time_ms: 5 },
      { rank: 1, samples: 40, train_time_sec: 0.013, compute_time_ms: 10, allreduce_time_ms: 3, wait_time_ms: 0 },
    ]);
    assert.deepEqual([r.dataset, r.seed, r.wall_time_sec, r.test_loss, r.environment.backend], ['synthetic-regression', 4, 2.5, 0.5, 'js']);
    assert.equal(typeof r.environment.smolcluster_version, 'string');
  });

  it('refuses an incomplete run: a missing rank record, or fewer steps than result.json says', () => {
    assert.throws(() => buildRunFile(experiment('missing-rank', LINES.filter((l) => !(l.step === 1 && l.rank === 1)), 3)),
      (e: unknown) => e instanceof InputError && /step 1 has records of 1 ranks, expected 2/.test(e.message));
    assert.throws(() => buildRunFile(experiment('short', LINES, 4)), /holds 3 steps but result\.json reports 4/);
    assert.throws(() => buildRunFile(join(dir, 'nothing')), (e: unknown) => e instanceof InputError && /result\.json: no such file/.test(e.message));
  });

  it('readRunFile checks the schema and the fields validate needs, naming the file', () => {
    const good = writeRun(dir, 'good.json', { losses: [1, 0.5] });
    assert.equal(readRunFile(good).steps.length, 2);
    const cases: Array<[string, string, RegExp]> = [
      ['other.json', JSON.stringify({ schema: 'smolcluster-train-result', schema_version: 1 }), /is not a smolcluster-run file \(schema: "smolcluster-train-result"\)/],
      ['v2.json', JSON.stringify({ schema: 'smolcluster-run', schema_version: 2 }), /version 2; this smolcluster reads version 1/],
      ['array.json', '[]', /is not a JSON object/],
      ['steps.json', JSON.stringify({ schema: 'smolcluster-run', schema_version: 1, num_workers: 1, num_steps: 1, average_step_time_ms: 1, average_throughput_samples_per_sec: 1, final_loss: 1, steps: [{ step: 0, loss: 'x' }] }), /steps\[0\]\.loss must be a number/],
      ['count.json', JSON.stringify({ schema: 'smolcluster-run', schema_version: 1, num_workers: 1, num_steps: 2, average_step_time_ms: 1, average_throughput_samples_per_sec: 1, final_loss: 1, steps: [] }), /num_steps is 2 but steps holds 0/],
    ];
    for (const [name, text, why] of cases) {
      const f = join(dir, name);
      writeFileSync(f, text);
      assert.throws(() => readRunFile(f), (e: unknown) => e instanceof InputError && e.message.startsWith(f) && why.test(e.message), name);
    }
  });
});
