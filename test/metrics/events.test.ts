import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { EVENTS_SCHEMA, EVENTS_SCHEMA_VERSION, EventLog, LauncherEvents, RunEvents, appendEvent, eventsFile, resetEvents } from '../../src/metrics/events.js';
import { JsonlWriter } from '../../src/metrics/jsonl.js';
import { backend } from '../../src/tensor/dispatch.js';
import { sleep, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('events');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const lines = (file: string): Array<Record<string, unknown>> =>
  readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('EventLog', () => {
  it('writes each event at once, in the {schema, schema_version, kind, time} envelope; reset empties the file; two logs share it', () => {
    const file = eventsFile(join(dir, 'a'));
    const first = new EventLog(file, { reset: true });
    first.emit('worker_started', { rank: 0, pid: 10 });
    const second = new EventLog(file);
    second.emit('rebalance', { step: 10, policy: 'dynamic', reason: 'rank 1 is slow', old_shares: [0.5, 0.5], shares: [0.6, 0.4], ms_per_sample: [1, 1.5] });
    first.emit('something_new', { detail: 'kinds this version does not know are allowed' });
    // Written at once: readable before close.
    const got = lines(file);
    assert.deepEqual(got.map((e) => e.kind), ['worker_started', 'rebalance', 'something_new']);
    for (const e of got) {
      assert.equal(e.schema, EVENTS_SCHEMA);
      assert.equal(e.schema_version, EVENTS_SCHEMA_VERSION);
      assert.equal('v' in e, false);
      assert.ok(Object.keys(e).every((k) => /^[a-z0-9_]+$/.test(k)), Object.keys(e).join(','));
      assert.equal(typeof e.time, 'number');
    }
    assert.deepEqual(got[1].shares, [0.6, 0.4]);
    first.close();
    second.close();
    new EventLog(file, { reset: true }).close();
    assert.equal(readFileSync(file, 'utf8'), '');
  });

  it('appendEvent writes only into an existing folder and never throws', () => {
    appendEvent(join(dir, 'missing'), 'worker_finished', { rank: 1, steps: 3 });
    assert.throws(() => readFileSync(eventsFile(join(dir, 'missing'))));
    appendEvent(join(dir, 'a'), 'worker_finished', { rank: 1, steps: 3 });
    assert.deepEqual(lines(eventsFile(join(dir, 'a'))).map((e) => e.kind), ['worker_finished']);
  });

  it('RunEvents (a rank) and LauncherEvents (the owner) record the lifecycle', () => {
    const d = join(dir, 'run');
    const launcher = new LauncherEvents(d, 2);
    launcher.workerStarted(0, 100);
    launcher.workerStarted(1, 101);
    const rank1 = new RunEvents(d, 1, { workers: 2, backend: 'js', threads: 1, owner: false });
    rank1.onStart({ device: 'cpu' });
    rank1.onEval({ step: 5, epoch: 0, loss: 1, accuracy: 0.5, samples: 100 }); // only rank 0 records evaluations
    rank1.finished(10);
    rank1.end(new Error('not the owner: ignored'));
    rank1.close();
    launcher.workerExited(0, 0, null);
    launcher.workerExited(1, null, 'SIGKILL');
    launcher.end();
    const got = lines(eventsFile(d));
    assert.deepEqual(got.map((e) => `${e.kind}${e.rank ?? ''}`), ['run_start', 'worker_started0', 'worker_started1', 'worker_joined1', 'worker_finished1', 'worker_lost1', 'run_end']);
    assert.equal(got[0].workers, 2);
    assert.equal(got[3].backend, 'js');
    // The device the loop trained on, with the backend whose kernels ran there (dashboard: device column).
    assert.deepEqual(got[3].device, { type: 'cpu', name: 'cpu', backend: backend().name, software: false });
    assert.equal(got[5].error, 'killed by SIGKILL');
    assert.deepEqual({ status: got[6].status, error: got[6].error }, { status: 'failed', error: 'worker rank 1 killed by SIGKILL' });
  });
});

describe('JsonlWriter time-based flush', () => {
  it('flushes a line once the oldest buffered one is flushAfterMs old, on write or by timer', async () => {
    const file = join(dir, 'timed.jsonl');
    const w = new JsonlWriter(file, 1000, 100);
    w.write({ i: 0 });
    assert.equal(readFileSync(file, 'utf8'), '', 'buffered at first');
    // The timer flushes when no more writes come...
    await sleep(300);
    assert.equal(readFileSync(file, 'utf8'), '{"i":0}\n');
    // ...and a write flushes by itself once the buffer is old enough, even when timers cannot run.
    w.write({ i: 1 });
    const t = Date.now();
    while (Date.now() - t < 120) { /* a busy training step: no timers run */ }
    w.write({ i: 2 });
    assert.equal(readFileSync(file, 'utf8'), '{"i":0}\n{"i":1}\n{"i":2}\n');
    w.close();
  });
});

describe('events.jsonl has one writer (metrics/events.ts)', () => {
  it('relay appends another process\'s line as it stands; resetEvents empties the file', () => {
    const d = join(dir, 'relay');
    const log = new EventLog(eventsFile(d), { reset: true });
    log.emit('worker_started', { rank: 0, pid: 1 });
    const line = { v: EVENTS_SCHEMA_VERSION, kind: 'eval', rank: 1, step: 3, test_loss: 0.5, test_accuracy: null, time: 12 };
    log.relay(line);
    assert.deepEqual(lines(eventsFile(d))[1], line);
    assert.equal(readFileSync(eventsFile(d), 'utf8').split('\n')[1], JSON.stringify(line));
    resetEvents(d);
    assert.equal(readFileSync(eventsFile(d), 'utf8'), '');
    log.emit('worker_started', { rank: 0, pid: 2 });
    assert.deepEqual(lines(eventsFile(d)).map((e) => e.pid), [2]);
    log.close();
  });

  it('no other source file opens events.jsonl for writing', () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), '../../../src');
    const writes = /(JsonlWriter|writeFileSync|appendFileSync|openSync|createWriteStream)\(\s*(join\([^)]*EVENTS_FILE|eventsFile\(|['"][^'"]*events\.jsonl)/;
    const offenders = sourceFiles(src).filter((f) => !f.endsWith(join('metrics', 'events.ts')) && writes.test(readFileSync(f, 'utf8')));
    assert.deepEqual(offenders.map((f) => relative(src, f)), []);
  });
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}
