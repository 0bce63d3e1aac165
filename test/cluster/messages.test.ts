import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeHeartbeat, decodeJob, decodeTask, decodeTaskResult, encode, encodeJob, encodeTask, encodeTaskResult } from '../../src/cluster/messages.js';
import { lettersParamCount } from '../../src/cluster/letters_model.js';
import { ProtocolError } from '../../src/util/errors.js';

const shard = (name: string, rows: number) => ({ name, rows, features: Float32Array.from({ length: rows * 16 }, (_, i) => i % 16), labels: Int32Array.from({ length: rows }, (_, i) => i % 26) });

test('tasks, results and jobs round-trip with their float tails intact', () => {
  const p = lettersParamCount(3);
  const weights = Float32Array.from({ length: p }, (_, i) => i / 7);
  const t = { job: 1, round: 2, task: 3, shard: 's', epochs: 5, lr: 1e-4, hidden: 3, allowReject: true, ...shard('s', 4), weights };
  const back = decodeTask(encodeTask(t), lettersParamCount);
  assert.deepEqual(back.weights, weights);
  assert.deepEqual(back.labels, t.labels);
  assert.equal(back.allowReject, true);
  // The job's precision travels with each task; a task without one (an older coordinator) means fp32.
  assert.equal(back.precision, 'fp32');
  assert.equal(decodeTask(encodeTask({ ...t, precision: 'bf16' }), lettersParamCount).precision, 'bf16');
  assert.throws(() => decodeTask(encodeTask({ ...t, precision: 'fp8' as 'bf16' }), lettersParamCount), /malformed task: bad precision/);
  const r = { job: 1, round: 2, task: 3, status: 'done' as const, trainError: 0.5, trainLoss: 12, epochs: 5, ms: 3, busy: false, delta: weights };
  assert.deepEqual(decodeTaskResult(encodeTaskResult(r), () => p).delta, weights);
  const job = { rounds: 2, epochs: 3, hidden: 4, lr: 0.1, seed: 5, weighting: 'samples' as const, shards: [shard('a', 2), shard('b', 3)], validation: shard('v', 1) };
  const j = decodeJob(encodeJob(job));
  assert.equal(j.precision, 'fp32');
  assert.equal(decodeJob(encodeJob({ ...job, precision: 'bf16' })).precision, 'bf16');
  assert.deepEqual(j.shards[1].features, job.shards[1].features);
  assert.deepEqual(j.validation.labels, job.validation.labels);
});

test('malformed messages are protocol errors naming the message and the field', () => {
  const p = lettersParamCount(3);
  const bad = (f: () => unknown, re: RegExp): void => assert.throws(f, (e: Error) => e instanceof ProtocolError && re.test(e.message));
  bad(() => decodeTask(new Uint8Array(2), lettersParamCount), /malformed task: too short/);
  bad(() => decodeTask(encode({ job: 1 }), lettersParamCount), /malformed task: bad round/);
  const r = { job: 1, round: 2, task: 3, status: 'done', trainError: 0, trainLoss: 0, epochs: 1, ms: 1, busy: false };
  bad(() => decodeTaskResult(encode(r, new Float32Array(p - 1)), () => p), /task result: \d+ values, expected \d+/);
  bad(() => decodeTaskResult(encode(r, Float32Array.from({ length: p }, () => NaN)), () => p), /non-finite delta/);
  bad(() => decodeTaskResult(encode({ ...r, status: 'maybe' }), () => p), /bad status/);
  // A result of a job that is no longer running keeps its head only (the scheduler ignores it).
  assert.equal(decodeTaskResult(encode(r, new Float32Array(7)), () => null).delta.length, 0);
  const job = encodeJob({ rounds: 1, epochs: 1, hidden: 1, lr: 1, seed: 0, weighting: 'equal', shards: [shard('a', 1)], validation: shard('v', 1) });
  const tampered = job.slice();
  new Float32Array(tampered.buffer, tampered.length - 4, 1)[0] = 40; // the last label
  bad(() => decodeJob(tampered), /label 40/);
  bad(() => decodeJob(Buffer.from('\x08\x00\x00\x00not json')), /head is not UTF-8 JSON/);
});

test("a node's device travels in its heartbeats and task results (absent: cpu), a refusal's reason in its result", () => {
  assert.deepEqual(decodeHeartbeat(encode({ inFlight: 2, device: 'webgpu' })), { inFlight: 2, device: 'webgpu' });
  assert.deepEqual(decodeHeartbeat(encode({ inFlight: 0 })), { inFlight: 0, device: 'cpu' });
  assert.throws(() => decodeHeartbeat(encode({ inFlight: 0, device: 'tpu' })), (e: Error) => e instanceof ProtocolError && /malformed heartbeat: bad device/.test(e.message));
  const p = lettersParamCount(3);
  const r = { job: 1, round: 2, task: 3, status: 'done' as const, trainError: 0.5, trainLoss: 12, epochs: 5, ms: 3, busy: false, delta: new Float32Array(p) };
  assert.equal(decodeTaskResult(encodeTaskResult(r), () => p).device, 'cpu');
  assert.equal(decodeTaskResult(encodeTaskResult({ ...r, device: 'webgpu' }), () => p).device, 'webgpu');
  const refused = decodeTaskResult(encodeTaskResult({ ...r, status: 'rejected', delta: new Float32Array(0), device: 'webgpu', reason: 'webgpu computes in fp32 only' }), () => p);
  assert.equal(refused.reason, 'webgpu computes in fp32 only');
  assert.equal(decodeTaskResult(encodeTaskResult(r), () => p).reason, undefined);
});
