import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createClusterStrategy, strategySignature } from '../../../src/train/strategies/registry.js';
import { PipelineStrategy } from '../../../src/train/strategies/pipeline.js';
import { maxRelDiff, readSavedParams, runCliProcess, tempDir } from '../../helpers/cluster.js';

/**
 * `train --workers 4 --pipeline-stages 2 --zero 1` with real processes on 127.0.0.1: each stage's
 * two replicas shard that stage's Adam state (reduce-scatter, the shard's update, all-gather), and
 * the run gives the losses and the saved model of the same run without --zero, with half the
 * optimizer state on every rank; a killed run resumes from every rank's shard. --zero 2 and 3 (and
 * --zero 1 with --tensor-parallel inside the stages) are refused with a pipeline, by name.
 */
let dir = '';
before(() => {
  dir = tempDir('pipeline-zero');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const STEPS = 4;

interface StepLine { kind?: string; rank?: number; step?: number; loss?: number; grad_norm?: number; stage_parameter_bytes?: number; optimizer_state_bytes?: number }

/** Every step record of the run's metrics.jsonl, per rank. */
function steps(name: string): Map<number, StepLine[]> {
  const out = new Map<number, StepLine[]>();
  for (const line of readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as StepLine;
    if (r.kind !== 'step' || r.rank === undefined || r.step === undefined) continue;
    const list = out.get(r.rank) ?? [];
    list[r.step] = r;
    out.set(r.rank, list);
  }
  return out;
}

function train(name: string, extra: string[]): ReturnType<typeof runCliProcess> {
  return runCliProcess([
    'train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--context', '32', '--batch-size', '8', '--max-steps', String(STEPS),
    '--optimizer', 'adam', '--workers', '4', '--pipeline-stages', '2', '--micro-batches', '2',
    '--threads', '1', '--timeout', '60', '--experiments-dir', dir, '--name', name, '--save', join(dir, `${name}.smol`), ...extra,
  ], { timeoutMs: 180_000 });
}

describe('--zero 1 inside data × pipeline parallelism (real processes)', { timeout: 300_000 }, () => {
  it('4 workers = 2 replicas × 2 stages: --zero 1 gives the losses and saved parameters of the plain run, with half the optimizer state per rank', async () => {
    const [plain, zero] = await Promise.all([train('dp2pp2', []), train('dp2pp2-zero1', ['--zero', '1', '--checksum-every', '1'])]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(zero.code, 0, zero.stderr);
    assert.match(zero.stdout, /allreduce\+pp2\+zero1/);
    const want = steps('dp2pp2');
    const got = steps('dp2pp2-zero1');
    for (const rank of [0, 1, 2, 3]) {
      for (let step = 0; step < STEPS; step++) {
        const a = want.get(rank)?.[step];
        const b = got.get(rank)?.[step];
        assert.ok(a?.loss !== undefined && b?.loss !== undefined, `rank ${rank} step ${step}: recorded by both runs`);
        assert.ok(Math.abs(b.loss - a.loss) <= 1e-5 * a.loss, `rank ${rank} step ${step}: loss ${b.loss} with --zero 1 vs ${a.loss} without`);
        // The norm clipping uses (gpt2-tiny clips at 1): the shards' squares summed over the group, then the pipeline.
        assert.ok(a.grad_norm !== undefined && b.grad_norm !== undefined && Math.abs(b.grad_norm - a.grad_norm) <= 1e-5 * a.grad_norm, `rank ${rank} step ${step}: gradient norm ${b.grad_norm} with --zero 1 vs ${a.grad_norm} without`);
        // Adam's two moments: twice the stage's parameter bytes without --zero, half of that on each of the 2 replicas with it.
        // (Each run places its layers by its own timings, so the two runs' stages may be cut differently.)
        assert.equal(a.optimizer_state_bytes, 2 * a.stage_parameter_bytes!, `rank ${rank}: the whole stage's Adam state without --zero`);
        const [half, stageBytes] = [b.optimizer_state_bytes, b.stage_parameter_bytes];
        assert.ok(half !== undefined && stageBytes !== undefined && Math.abs(half - stageBytes) <= 8, `rank ${rank}: ${half} bytes of optimizer state with --zero 1 for a stage of ${stageBytes} parameter bytes`);
      }
    }
    // The two replicas of a stage (ranks s and s + 2) hold the two halves: together the stage's whole state.
    for (const stage of [0, 1]) {
      const [r0, r1] = [got.get(stage)![0], got.get(stage + 2)![0]];
      assert.equal(r0.stage_parameter_bytes, r1.stage_parameter_bytes, `stage ${stage}: both replicas hold the same layers`);
      assert.equal(r0.optimizer_state_bytes! + r1.optimizer_state_bytes!, 2 * r0.stage_parameter_bytes!, `stage ${stage}: the shards add up to the stage's state`);
    }
    const saved = readSavedParams(join(dir, 'dp2pp2-zero1.smol'));
    const reference = readSavedParams(join(dir, 'dp2pp2.smol'));
    assert.deepEqual(saved.header.params, reference.header.params, 'the whole model\'s layout');
    const diff = maxRelDiff(saved.params, reference.params);
    assert.ok(diff < 1e-5, `saved parameters differ by ${diff}`);
    process.stdout.write(`# optimizer state per rank (without → with --zero 1): ${[0, 1, 2, 3].map((r) => `${want.get(r)![0].optimizer_state_bytes} → ${got.get(r)![0].optimizer_state_bytes}`).join(', ')} bytes; saved parameters within ${diff.toExponential(2)}\n`);
  });

  it('a --zero 1 stage killed at step 3 ends the run; --resume auto retakes the steps from every rank\'s step-2 shard and optimizer state', async () => {
    const flags = ['--zero', '1', '--checkpoint-every', '2'];
    const cut = await train('cut', [...flags, '--fault', 'kill:rank=1:step=3', '--timeout', '10']);
    assert.notEqual(cut.code, 0, 'the killed stage should end the run');
    const resumed = await train('cut', [...flags, '--resume', 'auto']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(readFileSync(join(dir, 'cut', 'events.jsonl'), 'utf8'), /"kind":"resumed","rank":0,"file":"[^"]*rank-0[/\\]ckpt-00000002\.smolckpt","step":2/);
    // The first test's plain run is the same run: the resumed steps are its steps.
    const want = steps('dp2pp2');
    const got = steps('cut');
    for (const rank of [0, 1, 2, 3]) {
      for (let step = 2; step < STEPS; step++) {
        const [a, b] = [want.get(rank)?.[step]?.loss, got.get(rank)?.[step]?.loss];
        assert.ok(a !== undefined && b !== undefined && Math.abs(b - a) <= 1e-5 * a, `rank ${rank} step ${step}: resumed loss ${b} vs ${a}`);
      }
    }
    const diff = maxRelDiff(readSavedParams(join(dir, 'cut.smol')).params, readSavedParams(join(dir, 'dp2pp2.smol')).params);
    assert.ok(diff < 1e-5, `saved parameters differ by ${diff}`);
  });

  it('the registry builds --zero 1 with --pipeline-stages as the pipeline strategy, signs it, and refuses it with --tensor-parallel', () => {
    const opts = { checksumEvery: 0, peerTimeoutMs: 1000, pipelineStages: 2, zero: 1 as const };
    const [t] = createInProcessTransports(4, { timeoutMs: 1000 });
    const group = new ProcessGroup(t, { timeoutMs: 1000 });
    const built = createClusterStrategy('allreduce', group, opts);
    assert.ok(built instanceof PipelineStrategy);
    assert.equal(built.name, 'allreduce+pp2+zero1');
    assert.equal(strategySignature('allreduce', opts), 'allreduce+pp2(m=4,1f1b)+zero1');
    assert.throws(() => createClusterStrategy('allreduce', group, { ...opts, tensorParallel: 2 }), /--zero 1 cannot be combined with --tensor-parallel 2 yet/);
    assert.throws(() => createClusterStrategy('ps', group, opts), /--zero 1: runs with --strategy allreduce, not ps/);
  });

  for (const stage of ['2', '3']) {
    it(`refuses --zero ${stage} with --pipeline-stages, naming both flags`, async () => {
      const r = await runCliProcess(['train', '--model', 'gpt2-tiny', '--dataset', 'synthetic_text', '--workers', '4', '--pipeline-stages', '2', '--zero', stage, '--max-steps', '1', '--experiments-dir', dir], { timeoutMs: 60_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`--zero ${stage} cannot be combined with --pipeline-stages 2 yet \\(--zero 1 can\\)`));
    });
  }
});
