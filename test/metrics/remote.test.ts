import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../src/comm/inproc.js';
import { EventLog, eventsFile } from '../../src/metrics/events.js';
import { JsonlWriter } from '../../src/metrics/jsonl.js';
import { MetricReceiver } from '../../src/metrics/remote/receiver.js';
import { MetricSender } from '../../src/metrics/remote/sender.js';
import { SINK_FILE, STREAM_TAG, decodeMessage, encodeBatch } from '../../src/metrics/remote/wire.js';

function folder(name: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'sc-remote-')), name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function lines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

const step = (rank: number, s: number): object => ({ v: 1, kind: 'step', step: s, rank, loss: 1, samples: 32, compute_ms: 1, comm_ms: 0, wait_ms: 0, time: Date.now() });

describe('metric stream (every rank → rank 0)', () => {
  it('brings another folder\'s step and event lines into rank 0\'s files, refusing a line that names another rank', async () => {
    const [t0, t1] = createInProcessTransports(2);
    const d0 = folder('r0');
    const d1 = folder('r1');
    const sender = new MetricSender({ transport: t1, dir: d1, timeoutMs: 2000, batchMs: 5 });
    const metrics = new JsonlWriter(join(d1, 'metrics.jsonl'), 1);
    const events = new EventLog(eventsFile(d1));
    metrics.write(step(1, 0)); // before rank 0 collects: held in the queue
    const warnings: string[] = [];
    const receiver = new MetricReceiver({ transport: t0, dir: d0, endWaitMs: 2000, warn: (m) => warnings.push(m) });
    receiver.onStart();
    assert.ok(existsSync(join(d0, SINK_FILE)));
    events.emit('worker_joined', { rank: 1, host: 'far', backend: 'js', threads: 1, pid: 7 });
    metrics.write(step(1, 1));
    metrics.write(step(0, 2)); // claims rank 0: refused
    await new Promise((r) => setTimeout(r, 30));
    events.emit('worker_finished', { rank: 1, steps: 2 });
    await sender.close();
    await receiver.close();
    metrics.close();
    events.close();

    const got = lines(join(d0, 'metrics.jsonl'));
    assert.deepEqual(got.map((r) => [r.rank, r.step]), [[1, 0], [1, 1]]);
    const ev = lines(eventsFile(d0));
    assert.deepEqual(ev.map((e) => e.kind), ['worker_joined', 'worker_finished', 'metric_stream']);
    assert.equal(ev[0].host, 'far');
    assert.deepEqual({ ...ev[2], time: 0 }, { schema: 'smolcluster-events', schema_version: 1, kind: 'metric_stream', rank: 1, records: 4, dropped: 0, refused: 1, state: 'ended', time: 0 });
    assert.match(warnings.join('\n'), /a record of rank 0 on rank 1's stream/);
    assert.ok(!existsSync(join(d0, SINK_FILE)), 'the marker is removed at the end');
    // Side traffic: a step's bytes_sent (the training's exchange) never includes it.
    assert.deepEqual([t0.bytesSent, t1.bytesSent], [0, 0]);
    await Promise.all([t0.close(), t1.close()]);
  });

  it('sends nothing when rank 0 writes the same folder (one host): no line twice', async () => {
    const [t0, t1] = createInProcessTransports(2);
    const dir = folder('shared');
    const sender = new MetricSender({ transport: t1, dir, timeoutMs: 2000, batchMs: 5 });
    const receiver = new MetricReceiver({ transport: t0, dir, endWaitMs: 2000 });
    receiver.onStart();
    await new Promise((r) => setTimeout(r, 20));
    const metrics = new JsonlWriter(join(dir, 'metrics.jsonl'), 1);
    for (let s = 0; s < 3; s++) metrics.write(step(1, s));
    await sender.close();
    await receiver.close();
    metrics.close();
    assert.equal(lines(join(dir, 'metrics.jsonl')).length, 3);
    assert.deepEqual(receiver.peers.map((p) => p.state), ['local']);
    assert.equal(lines(eventsFile(dir)).length, 0);
    await Promise.all([t0.close(), t1.close()]);
  });

  it('drops (and counts) what a full queue cannot hold instead of waiting', async () => {
    const [t0, t1] = createInProcessTransports(2);
    const d0 = folder('r0');
    const d1 = folder('r1');
    const sender = new MetricSender({ transport: t1, dir: d1, timeoutMs: 2000, batchMs: 5, maxRecords: 5 });
    const metrics = new JsonlWriter(join(d1, 'metrics.jsonl'), 1);
    for (let s = 0; s < 8; s++) metrics.write(step(1, s)); // rank 0 is not collecting yet
    assert.equal(sender.droppedRecords, 3);
    const warnings: string[] = [];
    const receiver = new MetricReceiver({ transport: t0, dir: d0, endWaitMs: 2000, warn: (m) => warnings.push(m) });
    receiver.onStart();
    await sender.close();
    await receiver.close();
    metrics.close();
    assert.deepEqual(lines(join(d0, 'metrics.jsonl')).map((r) => r.step), [0, 1, 2, 3, 4]);
    assert.deepEqual({ records: receiver.peers[0].records, dropped: receiver.peers[0].dropped }, { records: 5, dropped: 3 });
    assert.match(warnings.join('\n'), /rank 1 dropped 3 records/);
    await Promise.all([t0.close(), t1.close()]);
  });

  it('survives a garbage message and a peer that never ends its stream (bounded wait naming it)', async () => {
    const [t0, t1, t2] = createInProcessTransports(3);
    const d0 = folder('r0');
    const warnings: string[] = [];
    const receiver = new MetricReceiver({ transport: t0, dir: d0, endWaitMs: 200, warn: (m) => warnings.push(m) });
    receiver.onStart();
    await t1.send(0, STREAM_TAG, new Uint8Array([0xff, 0xfe, 0x00]));
    await t1.send(0, STREAM_TAG, encodeBatch([`m${JSON.stringify(step(1, 0))}`], 0, true));
    // Rank 2 reads the sink message and then says nothing.
    assert.equal(decodeMessage(await t2.recv(0, STREAM_TAG)).t, 'sink');
    const t = Date.now();
    await receiver.close();
    assert.ok(Date.now() - t < 2000);
    assert.deepEqual(lines(join(d0, 'metrics.jsonl')).map((r) => [r.rank, r.step]), [[1, 0]]);
    assert.match(warnings.join('\n'), /rank 1: message is not UTF-8/);
    assert.match(warnings.join('\n'), /rank 2 did not end its stream within 200 ms/);
    await Promise.all([t0.close(), t1.close(), t2.close()]);
  });
});
