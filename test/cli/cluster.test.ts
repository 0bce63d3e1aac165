/**
 * The cluster-job commands as users run them, all real processes on 127.0.0.1: the original's
 * positional forms, garbage and unauthenticated peers thrown at a running coordinator (which serves
 * on), two clients at once (each gets what it would have got alone), `federated`, and bad input.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { submitJob } from '../../src/cluster/client.js';
import { dialCluster } from '../../src/cluster/link.js';
import type { JobUpdate } from '../../src/cluster/messages.js';
import { encodeFrame, MessageType, PROTOCOL_VERSION } from '../../src/comm/wire/frame.js';
import { backend } from '../../src/tensor/dispatch.js';
import { freePort, isRunning, readJsonl, runCliProcess, startCli, TEST_TOKEN, tempDir, waitFor, type Running } from '../helpers/cluster.js';
import { ENV, JOB, fileOutcome, jobSpec, letters, nodesFile, outcome, stopAll } from '../helpers/cluster_jobs.js';
import { fedavgInProcess } from '../../src/cluster/reference.js';

const procs: Running[] = [];
after(() => stopAll(procs));

async function reference(job: typeof JOB): Promise<{ errors: number[]; checksum: string }> {
  backend().setThreads(1);
  const r = await fedavgInProcess(letters(), job);
  return { errors: r.validationErrors, checksum: r.weightsChecksum };
}

const read = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** Opens a raw TCP connection, writes `bytes`, resolves when the coordinator closes it (or after `ms`). */
function rawPeer(port: number, bytes: Uint8Array, ms: number): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    s.on('error', () => {});
    s.resume(); // read (and drop) what it says, so its close is seen
    const t = setTimeout(() => {
      s.destroy();
      resolve('open');
    }, ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve('closed');
    });
  });
}

test('positional forms, bad peers and two concurrent clients against a coordinator process', async () => {
  const dir = tempDir('cluster-cli');
  const [port, n1, n2] = await Promise.all([freePort(), freePort(), freePort()]);
  const opts = { env: ENV, timeoutMs: 120_000 };
  // The original's forms: `compute-node 9091 0.2`, `coordinator 9095 2` (here 3: round-robin).
  // Busy half the time for 300 ms (delays overlap: --slots 11), so a job lasts long enough for a second to queue behind it.
  const nodes = [n1, n2].map((p) => startCli(['compute-node', String(p), '0.5', '--host', '127.0.0.1', '--busy-delay-ms', '300'], opts));
  const coord = startCli(['coordinator', String(port), '3', '--host', '127.0.0.1', '--slots', '11', '--nodes', nodesFile([n1, n2], dir), '--out', join(dir, 'c')], opts);
  procs.push(...nodes, coord);
  await waitFor(() => readJsonl(join(dir, 'c', 'events.jsonl')).filter((e) => e.kind === 'node_joined').length === 2, `two nodes joined (coordinator stderr: ${coord.stderr})`, 30_000);

  // Peers that must not hurt it: an HTTP request, a frame before the handshake, half a header,
  // a wrong token, and an authenticated peer that sends what it should not.
  const silent = rawPeer(port, new Uint8Array(10), 1500); // half a header, then nothing
  assert.equal(await rawPeer(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 10_000), 'closed');
  assert.equal(await rawPeer(port, encodeFrame({ version: PROTOCOL_VERSION, type: MessageType.Task, rank: 0, seq: 0, tag: 0 }, new Uint8Array(64)), 10_000), 'closed');
  await assert.rejects(dialCluster('127.0.0.1', port, 'the coordinator', 'a-wrong-token-0123456789abcdef', 2000), /authentication failed|refused/);
  const rude = await dialCluster('127.0.0.1', port, 'the coordinator', TEST_TOKEN, 2000);
  const dropped = new Promise((resolve) => rude.once('closed', resolve));
  await rude.send(MessageType.JobSubmit, -1, 0, 0, Buffer.from('\x04\x00\x00\x00{}  garbage!'));
  await dropped;

  // Two clients at once: a `submit` process in the original's positional form, and — as soon as
  // its job runs — a second client (in this process, so that it surely arrives while the first runs).
  const eventsFile = join(dir, 'c', 'events.jsonl');
  const a = startCli(['submit', '127.0.0.1', String(port), 'letters', '2', '5', '8', '0.0001', '--seed', '3', '--output', join(dir, 'a.json')], opts);
  await waitFor(() => readJsonl(eventsFile).some((e) => e.kind === 'job_started'), 'the first job to start', 30_000, 5);
  const updates: JobUpdate[] = [];
  const b = await submitJob({ host: '127.0.0.1', port, token: TEST_TOKEN, spec: jobSpec({ seed: 4 }), connectTimeoutMs: 10_000, timeoutMs: 90_000, onUpdate: (u) => updates.push(u) });
  const ra = await a.done;
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(await silent, 'open', 'a silent peer waits for its own handshake deadline; the jobs ran meanwhile');
  assert.deepEqual(fileOutcome(read(join(dir, 'a.json'))), await reference(JOB));
  assert.deepEqual(outcome(b), await reference({ ...JOB, seed: 4 }));
  assert.deepEqual(updates[0], { state: 'queued', job: 2, ahead: 1 }, 'the second job waited behind the first');
  assert.match(ra.stdout, /round 1: validation error 0\.\d{4}, training error 0\.\d{4}/);
  assert.match(ra.stdout, new RegExp(`final validation error: ${(await reference(JOB)).errors[1].toFixed(4)}`));

  assert.ok(isRunning(coord.pid), 'the coordinator is still serving');
  const events = readJsonl(join(dir, 'c', 'events.jsonl'));
  assert.ok(events.filter((e) => e.kind === 'peer_refused').length >= 3, 'refused peers are logged');
  assert.equal(events.filter((e) => e.kind === 'job_done').length, 2);
  assert.ok(events.some((e) => e.kind === 'round' && e.job === 2 && e.round === 2));
  assert.ok(events.filter((e) => e.kind === 'task_assigned').every((e) => e.policy === 'round-robin'));
  const file = read(join(dir, 'c', 'jobs', 'job-1', 'result.json'));
  assert.equal(file.schema, 'smolcluster-federated-result');
  assert.equal(file.schema_version, 1);
  assert.ok(typeof file.validation_error === 'number' && typeof file.weights_checksum === 'string' && typeof file.validation_rows === 'number', 'snake_case keys');
});

test('federated runs coordinator, nodes and client on this machine in one command', async () => {
  const dir = tempDir('federated');
  const r = await runCliProcess(['federated', '--nodes', '2', '--rounds', '1', '--epochs', '2', '--hidden', '8', '--lr', '1e-4', '--seed', '3', '--busy-delay-ms', '5', '--output', join(dir, 'r.json'), '--out', join(dir, 'run')], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fileOutcome(read(join(dir, 'r.json'))), await reference({ ...JOB, rounds: 1, epochs: 2 }));
  assert.match(r.stdout, /final validation error: 0\.\d{4}/);
  assert.ok(readJsonl(join(dir, 'run', 'events.jsonl')).some((e) => e.kind === 'job_done'));
});

test('a malformed compute_nodes.txt, an empty data folder and a missing token are one clear line each', async () => {
  const dir = tempDir('cluster-bad');
  const bad = join(dir, 'compute_nodes.txt');
  writeFileSync(bad, '127.0.0.1,9091\n127.0.0.1:9092\n');
  const empty = join(dir, 'letters');
  mkdirSync(empty);
  const [c, s, t] = await Promise.all([
    runCliProcess(['coordinator', '--port', '0', '--policy', 'random', '--host', '127.0.0.1', '--nodes', bad, '--out', join(dir, 'c')], { env: ENV }),
    runCliProcess(['submit', '--coordinator', '127.0.0.1:1', '--data', empty, '--rounds', '1', '--epochs', '1', '--hidden', '2', '--lr', '0.1'], { env: ENV }),
    runCliProcess(['compute-node', '0'], { env: { SMOLCLUSTER_TOKEN: undefined } }),
  ]);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /smolcluster: error: .*compute_nodes\.txt \(line 2\): expected "host,port", got "127\.0\.0\.1:9092"/);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /smolcluster: error: .*letters: no training files/);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /SMOLCLUSTER_TOKEN/);
});
