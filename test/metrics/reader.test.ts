import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExperimentFileError, loadRun, readEvents, readMetrics, readResult } from '../../src/metrics/reader.js';
import { runCliProcess, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('reader');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const step = (over: object = {}): string => JSON.stringify({ v: 1, kind: 'step', step: 0, epoch: 0, rank: 0, loss: 2, samples: 8, lr: 0.1, compute_ms: 1, comm_ms: 0, wait_ms: 0, time: 1, ...over });

function write(name: string, text: string): string {
  const file = join(dir, name);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
  return file;
}

describe('reader', () => {
  it('loads a real run folder (and the same run from its result.json or one of its files)', async () => {
    const r = await runCliProcess(['train', '--max-steps', '10', '--eval-every', '5', '--name', 'real', '--experiments-dir', dir, '--threads', '1'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const run = loadRun(join(dir, 'real'));
    assert.equal(run.name, 'real');
    assert.equal(run.config?.workers, 1);
    assert.equal(run.metrics.steps.length, 10);
    assert.deepEqual(run.metrics.evals.map((e) => e.step), [5, 10]);
    assert.equal(run.result?.steps, 10);
    const kinds = run.events.map((e) => e.kind);
    for (const k of ['run_start', 'worker_joined', 'eval', 'worker_finished', 'run_end']) assert.ok(kinds.includes(k), `${k} in ${kinds}`);
    assert.equal(loadRun(join(dir, 'real', 'result.json')).metrics.steps.length, 10);
    assert.equal(loadRun(join(dir, 'real', 'events.jsonl')).dir, join(dir, 'real'));
  });

  it('tolerates a last line cut short (a live or killed run); names the file and line of a bad one', () => {
    const live = write('live.jsonl', `${step()}\n${step({ step: 1 })}\n{"v":1,"kind":"st`);
    assert.equal(readMetrics(live).steps.length, 2);
    const bad = write('bad.jsonl', `${step()}\nnot json\n${step()}\n`);
    assert.throws(() => readMetrics(bad), (e: unknown) => e instanceof ExperimentFileError && e.message.startsWith(`${bad}:2: not JSON`));
  });

  it('refuses newer or missing schema versions with a message naming the file', () => {
    const newer = write('newer.jsonl', `${step({ v: 2 })}\n`);
    assert.throws(() => readMetrics(newer), new RegExp(`^ExperimentFileError: ${newer}:1: schema version 2 is newer than this smolcluster reads \\(1\\); upgrade smolcluster`.replace(/\//g, '\\/')));
    const unversioned = write('events.jsonl', '{"kind":"run_start","time":1}\n');
    assert.throws(() => readEvents(unversioned), /events\.jsonl:1: line has no schema version "v"/);
    const kindless = write('e2/events.jsonl', '{"v":1,"time":1}\n');
    assert.throws(() => readEvents(kindless), /event has no "kind"/);
    const result = write('r/result.json', JSON.stringify({ schema: 'smolcluster-train-result', schema_version: 9 }));
    assert.throws(() => readResult(result), /result\.json: smolcluster-train-result version 9 is newer than this smolcluster reads \(1\)/);
    const other = write('other.json', '{"hello":1}');
    assert.throws(() => loadRun(other), /other\.json: not a smolcluster run/);
    assert.throws(() => loadRun(join(dir, 'nope')), /nope: no such file or folder/);
    mkdirSync(join(dir, 'empty'));
    assert.throws(() => loadRun(join(dir, 'empty')), /empty: not an experiment folder/);
  });

  it('keeps lines of kinds it does not know, and reads a run.json (smolcluster run) without its folder', () => {
    const m = write('k/metrics.jsonl', `${step()}\n{"v":1,"kind":"layer_norms","step":0}\n`);
    assert.equal(readMetrics(m).other.length, 1);
    const runJson = write('run.json', JSON.stringify({
      schema: 'smolcluster-run', schema_version: 1, strategy: 'allreduce', num_workers: 2, experiment_dir: join(dir, 'gone'), config: { model: 'mlp' },
      steps: [{ step: 0, loss: 2, time: 5, ranks: [{ rank: 0, samples: 8, compute_ms: 1, allreduce_ms: 2, wait_ms: 3 }, { rank: 1, samples: 8, compute_ms: 1, allreduce_ms: 2, wait_ms: 0 }] }],
    }));
    const run = loadRun(runJson);
    assert.equal(run.dir, null);
    assert.equal(run.config?.workers, 2);
    assert.deepEqual(run.metrics.steps.map((s) => [s.rank, s.comm_ms, s.wait_ms]), [[0, 2, 3], [1, 2, 0]]);
  });
});
