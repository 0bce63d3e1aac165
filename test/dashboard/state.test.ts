import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUCKET_STEPS, RunState, describeEvent, deviceOf } from '../../src/dashboard/state.js';
import { parseMetricsLine } from '../../src/metrics/reader.js';
import type { StepLine } from '../../src/metrics/reader.js';

const line = (rank: number, step: number, over: Partial<StepLine> = {}): { kind: 'step'; rec: StepLine } => ({
  kind: 'step',
  rec: { v: 1, kind: 'step', step, epoch: 0, rank, loss: 1 + step, samples: 10, lr: 0.1, compute_ms: rank === 1 ? 6 : 2, comm_ms: 1, wait_ms: rank === 1 ? 0 : 4, time: 1000 + step, ...over },
});
const event = (kind: string, fields: object): { v: number; kind: string; time: number } => ({ v: 1, kind, time: 5, ...fields });

describe('RunState', () => {
  it('draws a bucket only once every running rank reported its last step, in step order', () => {
    const s = new RunState('r', null);
    s.setConfig({ workers: 2 });
    for (let i = 0; i < 2 * BUCKET_STEPS; i++) s.addMetric(line(0, i));
    s.settle();
    assert.equal(s.snapshot().buckets.x.length, 0, 'rank 1 has not reported yet');
    for (let i = 0; i < BUCKET_STEPS; i++) s.addMetric(line(1, i));
    s.settle();
    const b = s.snapshot().buckets;
    assert.deepEqual(b.x, [BUCKET_STEPS]);
    // 2 ranks × 10 steps × 10 samples, over the slowest rank's 10 × 7 ms.
    assert.equal(b.samplesPerSec[0], (200 * 1000) / 70);
    assert.equal(b.loss[0], 1 + (BUCKET_STEPS - 1) / 2);
    assert.deepEqual([b.compute[0][0], b.compute[1][0], b.wait[0][0], b.wait[1][0]], [2, 6, 4, 0]);
  });

  it('a language model\'s buckets carry its tokens/s and learning rate, its evaluations their perplexity', () => {
    const s = new RunState('r', null);
    s.setConfig({ workers: 2 });
    for (let i = 0; i < BUCKET_STEPS; i++) for (const rank of [0, 1]) s.addMetric(line(rank, i, { tokens: 640, lr: i < 5 ? 0.1 : 0.2 }));
    s.addMetric({ kind: 'eval', rec: { v: 1, kind: 'eval', step: BUCKET_STEPS, epoch: 0, rank: 0, test_loss: Math.log(20), test_accuracy: 0.5, test_perplexity: 20, time: 2000 } });
    s.settle();
    const { buckets: b, evals: e } = s.snapshot();
    // 2 ranks × 10 steps × 640 tokens over the slowest rank's 10 × 7 ms; the lr is the steps' mean.
    assert.equal(b.tokensPerSec[0], (2 * 10 * 640 * 1000) / 70);
    assert.ok(Math.abs(b.lr[0]! - 0.15) < 1e-12);
    assert.deepEqual(e.perplexity, [20]);
    const images = new RunState('i', null);
    images.setConfig({ workers: 1 });
    for (let i = 0; i < BUCKET_STEPS; i++) images.addMetric(line(0, i));
    images.settle();
    assert.deepEqual(images.snapshot().buckets.tokensPerSec, [null], 'steps without token counts draw no tokens/s');
  });

  it('names the straggler, lists members from events, marks a killed rank lost and a rank that reported its error failed', () => {
    const s = new RunState('r', null);
    s.addEvent(event('run_start', { workers: 3 }));
    for (const rank of [0, 1, 2]) s.addEvent(event('worker_joined', { rank, host: `h${rank}`, backend: 'js', threads: 1, pid: 100 + rank }));
    s.addEvent(event('worker_joined', {
      rank: 2, host: 'h2', backend: 'js', threads: 1, pid: 102, node: { cores: 8, memory_gib: 16, cpu: 'M2', gpus: ['Apple M2'], interfaces: ['en0 (wifi) 10.0.0.2'] },
      device: { type: 'webgpu', name: 'apple metal-3 Apple M2', backend: 'webgpu', software: false },
    }));
    s.addEvent(event('worker_joined', { rank: 1, host: 'h1', backend: 'oneDNN', threads: 1, pid: 101, device: { type: 'cpu', name: 'cpu', backend: 'native', software: false } }));
    for (let i = 0; i < 5; i++) for (const rank of [0, 1, 2]) s.addMetric(line(rank, i));
    s.settle();
    let st = s.status();
    assert.deepEqual(st.members.map((m) => [m.rank, m.host, m.status, m.steps]), [[0, 'h0', 'running', 5], [1, 'h1', 'running', 5], [2, 'h2', 'running', 5]]);
    assert.deepEqual(st.members.map((m) => m.node), [null, null, '8 cores · 16 GiB · Apple M2'], 'worker_joined.node fills the member table\'s node cell');
    assert.equal(st.members[2].nodeDetail, 'M2\nen0 (wifi) 10.0.0.2');
    // worker_joined.device fills the device column: a mixed cluster's GPU and cpu workers side by side
    // (rank 0 joined without one, as lines written before the field existed).
    assert.deepEqual(st.members.map((m) => m.device), [null, 'cpu · native', 'apple metal-3 Apple M2 · webgpu']);
    assert.equal(st.straggler?.rank, 1);
    assert.equal(st.straggler?.ratio, 3);
    assert.equal(st.straggler?.othersWaitMs, 4);

    s.addEvent(event('detection', { observer: 0, rule: 'peer-lost', severity: 'fatal', ranks: [2], step: 5, detail: 'rank 2: connection lost' }));
    s.addEvent(event('worker_lost', { rank: 2, error: 'killed by SIGKILL', code: null, signal: 'SIGKILL' }));
    s.addEvent(event('worker_lost', { rank: 0, error: 'exited with code 1', code: 1, signal: null }));
    s.addEvent(event('worker_finished', { rank: 1, steps: 5 }));
    s.addEvent(event('run_end', { status: 'failed', error: 'worker rank 2 killed by SIGKILL' }));
    s.settle();
    st = s.status();
    assert.deepEqual(st.members.map((m) => m.status), ['failed', 'finished', 'lost']);
    assert.equal(st.members[2].error, 'killed by SIGKILL');
    assert.equal(st.ended, true);
    assert.deepEqual(s.snapshot().buckets.x, [5], 'the last, partial bucket is drawn at the end');
    const texts = s.snapshot().events.map((e) => e.text);
    assert.ok(texts.includes('rank 2 lost: killed by SIGKILL'), texts.join('\n'));
    assert.ok(texts.includes('rank 0: peer-lost: rank 2: connection lost'), texts.join('\n'));
  });

  it('shows a text model\'s samples (metrics.jsonl "sample" lines, train --sample-every) in the event list', () => {
    const s = new RunState('r', null);
    const sample = { schema: 'smolcluster-metrics', schema_version: 1, kind: 'sample', step: 20, rank: 0, prompt: 'the cat', text: ' sat\non', temperature: 0, time: 7 };
    s.addMetric(parseMetricsLine(sample, 'metrics.jsonl'));
    assert.deepEqual(s.snapshot().events, [{ time: 7, rank: 0, kind: 'sample', text: 'step 20 sample: the cat sat\non', level: 'info' }]);
    assert.deepEqual(s.delta().events.map((e) => e.kind), ['sample']);
  });

  it('delta() carries only what is new since the last one', () => {
    const s = new RunState('r', null);
    s.setConfig({ workers: 1 });
    for (let i = 0; i < BUCKET_STEPS; i++) s.addMetric(line(0, i));
    s.addMetric({ kind: 'eval', rec: { v: 1, kind: 'eval', step: 10, epoch: 0, rank: 0, test_loss: 1, test_accuracy: 0.5, time: 2 } });
    s.settle();
    const first = s.delta();
    assert.deepEqual([first.buckets.x, first.evals.x, first.evals.from], [[10], [10], 0]);
    const second = s.delta();
    assert.deepEqual([second.buckets.x, second.evals.x, second.events], [[], [], []]);
  });

  it('shows an elastic run\'s membership changes: the member that left is lost, a restarted one runs again', () => {
    const s = new RunState('r', null);
    s.addEvent(event('run_start', { workers: 3 }));
    s.addEvent(event('membership', { rank: 0, epoch: 2, members: [0, 1], joined: [], left: [2], reason: 'rank 2 lost', step: 40, steps_lost: 1 }));
    assert.deepEqual(s.status().members.map((m) => m.status), ['running', 'running', 'lost']);
    s.addEvent(event('worker_restarted', { rank: 2, pid: 7, restarts: 1 }));
    s.addEvent(event('membership', { rank: 0, epoch: 3, members: [0, 1, 2], joined: [2], left: [], reason: 'a worker asked to join', step: 52, steps_lost: 0 }));
    assert.deepEqual(s.status().members.map((m) => m.status), ['running', 'running', 'running']);
    const texts = s.snapshot().events.map((e) => e.text);
    assert.ok(texts.includes('membership epoch 2: workers 0, 1 (left: 2), from step 40, 1 step(s) rolled back — rank 2 lost'), texts.join('\n'));
    assert.ok(texts.includes('rank 2 restarted (pid 7, restart 1)'));
  });

  it('spells a worker\'s device: the cpu with its backend, a GPU adapter by name, a software adapter as such', () => {
    assert.equal(deviceOf({ type: 'cpu', name: 'cpu', backend: 'js', software: false }), 'cpu · js');
    assert.equal(deviceOf({ type: 'webgpu', name: 'google swiftshader', backend: 'webgpu', software: true }), 'google swiftshader (software) · webgpu');
    for (const bad of [undefined, null, 'cpu', {}, { type: 'cpu' }]) assert.equal(deviceOf(bad), null, JSON.stringify(bad));
    const joined = describeEvent({ v: 1, kind: 'worker_joined', time: 1, rank: 1, host: 'mini', backend: 'WGSL', threads: 1, pid: 9, device: { type: 'webgpu', name: 'apple metal-3', backend: 'webgpu', software: false } });
    assert.equal(joined.text, 'rank 1 joined from mini on apple metal-3 · webgpu (WGSL, 1 thread, pid 9)');
  });
});
