/** metrics.jsonl and events.jsonl lines carry `schema` + `schema_version` (issue 23 §4); lines written before carried `"v": 1` and still read. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EventLog } from '../../src/metrics/events.js';
import { ExperimentFileError, readEvents, readMetrics } from '../../src/metrics/reader.js';
import { METRICS_SCHEMA, METRICS_SCHEMA_VERSION, StepMetricsObserver } from '../../src/metrics/step_metrics.js';
import { tempDir } from '../helpers/cluster.js';

const dir = tempDir('schema-lines');
after(() => rmSync(dir, { recursive: true, force: true }));

describe('metrics.jsonl lines', () => {
  it('are written with schema and schema_version, snake_case keys, and no "v"', () => {
    const file = join(dir, 'metrics.jsonl');
    writeFileSync(file, '');
    const m = new StepMetricsObserver(file, 0, 1);
    m.onStep({ step: 0, epoch: 0, rank: 0, loss: 2, samples: 8, lr: 0.1, computeMs: 1, commMs: 2, waitMs: 3, time: 10 });
    m.onEval({ step: 0, epoch: 0, loss: 1.5, accuracy: 0.5, samples: 10 });
    m.onEnd();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    for (const l of lines) {
      assert.equal(l.schema, 'smolcluster-metrics');
      assert.equal(l.schema_version, 1);
      assert.equal('v' in l, false);
      assert.ok(Object.keys(l).every((k) => /^[a-z0-9_]+$/.test(k)), Object.keys(l).join(','));
    }
    assert.equal(readMetrics(file).steps[0].compute_ms, 1);
    assert.equal(readMetrics(file).evals[0].test_loss, 1.5);
    assert.equal([METRICS_SCHEMA, METRICS_SCHEMA_VERSION].join('/'), 'smolcluster-metrics/1');
  });

  it('the older spelling ("v": 1) still reads; another schema, or a newer version, is refused naming the line', () => {
    const line = { kind: 'step', step: 0, epoch: 0, rank: 0, loss: 2, samples: 8, lr: 0.1, compute_ms: 1, comm_ms: 0, wait_ms: 0, time: 1 };
    const old = join(dir, 'old.jsonl');
    writeFileSync(old, `${JSON.stringify({ v: 1, ...line })}\n`);
    assert.equal(readMetrics(old).steps.length, 1);
    const other = join(dir, 'other.jsonl');
    writeFileSync(other, `${JSON.stringify({ schema: 'smolcluster-events', schema_version: 1, ...line })}\n`);
    assert.throws(() => readMetrics(other), (e: Error) => e instanceof ExperimentFileError && /other\.jsonl:1: "schema" is "smolcluster-events", expected "smolcluster-metrics"/.test(e.message));
    const newer = join(dir, 'newer.jsonl');
    writeFileSync(newer, `${JSON.stringify({ schema: 'smolcluster-metrics', schema_version: 9, ...line })}\n`);
    assert.throws(() => readMetrics(newer), /schema version 9 is newer/);
  });
});

describe('events.jsonl lines', () => {
  it('are written with schema and schema_version and no "v"; the reader takes them and the older spelling', () => {
    const file = join(dir, 'events.jsonl');
    const log = new EventLog(file, { reset: true });
    log.emit('worker_finished', { rank: 0, steps: 3 });
    log.close();
    const written = JSON.parse(readFileSync(file, 'utf8').trim()) as Record<string, unknown>;
    assert.equal(written.schema, 'smolcluster-events');
    assert.equal(written.schema_version, 1);
    assert.equal('v' in written, false);
    writeFileSync(file, `${readFileSync(file, 'utf8')}${JSON.stringify({ v: 1, kind: 'worker_finished', rank: 1, steps: 3, time: 1 })}\n`);
    assert.deepEqual(readEvents(file).map((e) => e.rank), [0, 1]);
    const other = join(dir, 'other-events.jsonl');
    writeFileSync(other, `${JSON.stringify({ schema: 'smolcluster-metrics', schema_version: 1, kind: 'worker_finished', time: 1 })}\n`);
    assert.throws(() => readEvents(other), /other-events\.jsonl:1: "schema" is "smolcluster-metrics", expected "smolcluster-events"/);
  });
});
