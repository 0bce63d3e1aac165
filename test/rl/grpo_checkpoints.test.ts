/**
 * GRPO's checkpoint helpers (src/rl/grpo_checkpoints.ts): the run's identity leaves out what may
 * change on resume and keeps what makes the trajectory; a resumed run's metrics.jsonl keeps the
 * step lines before its checkpoint and the held-out evaluations up to it (returned), and drops a
 * line a crash cut short. The resume itself: test/cli/grpo_resume.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { grpoRunIdentity, keepMetricsBefore } from '../../src/rl/grpo_checkpoints.js';
import { tempDir } from '../helpers/cluster.js';

const dir = tempDir('grpo-checkpoints');
after(() => rmSync(dir, { recursive: true, force: true }));

describe('grpo checkpoints', () => {
  it('the identity: steps, evaluations, workers, threads and callbacks may change; the policy, data, sampling and loss may not', () => {
    const base = { model: 'm', seed: 1, lr: 1e-6, generations: 8, lora: { loraRank: 4 }, maxSteps: 10, evalEvery: 2, runDir: 'a', onStep: () => {}, rollout: { workers: 2 } };
    const same = grpoRunIdentity(base);
    assert.equal(grpoRunIdentity({ ...base, maxSteps: 20, evalEvery: 0, runDir: 'b', onStep: undefined, rollout: undefined, maxRows: 4 }), same);
    for (const changed of [{ lr: 2e-6 }, { seed: 2 }, { generations: 4 }, { lora: { loraRank: 8 } }, { model: 'n' }]) {
      assert.notEqual(grpoRunIdentity({ ...base, ...changed }), same, JSON.stringify(changed));
    }
  });

  it('keeps the steps before the checkpoint and the evaluations up to it, returns those evaluations, and drops a torn line', () => {
    const line = (kind: string, step: number, more: object = {}): string => JSON.stringify({ schema: 's', schema_version: 1, kind, step, time: 1, ...more });
    writeFileSync(join(dir, 'metrics.jsonl'), [
      line('grpo_eval', 0, { reward: 0.1, prompts: 4 }), line('grpo', 0), line('grpo', 1), line('grpo_eval', 2, { reward: 0.3, prompts: 4 }),
      line('grpo', 2), line('grpo', 3), line('grpo_eval', 4, { reward: 0.5, prompts: 4 }), '{"kind":"grpo","st',
    ].join('\n'));
    const evals = keepMetricsBefore(dir, 2);
    assert.deepEqual(evals, [{ step: 0, record: { reward: 0.1, prompts: 4 } }, { step: 2, record: { reward: 0.3, prompts: 4 } }]);
    const kept = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number });
    assert.deepEqual(kept.map((l) => `${l.kind}:${l.step}`), ['grpo_eval:0', 'grpo:0', 'grpo:1', 'grpo_eval:2']);
    assert.deepEqual(keepMetricsBefore(join(dir, 'none'), 3), [], 'no metrics yet: nothing to keep');
  });
});
