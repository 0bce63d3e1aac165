/**
 * Load balancing under --elastic (real processes on 127.0.0.1): three workers, rank 2 a straggler
 * (the `slow` fault), rank 1 SIGKILLed mid-run. The shares follow the membership: when rank 1
 * leaves they are decided again over the survivors (a `rebalance` event naming the change), every
 * step's global batch is the members' × batch size whatever the shares, the straggler gets less,
 * and every sample is still trained on exactly once per epoch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SYNTHETIC_REGRESSION } from '../../src/train/run/run.js';
import { checkExactlyOnce } from '../../src/validate/exactly_once.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'smolcluster-elastic-balance-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const lines = (file: string): Array<Record<string, unknown>> =>
  readFileSync(join(dir, 'run', file), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('train --elastic --enable-load-balancing (real processes)', () => {
  it('shares are decided again over the survivors when a worker leaves; the global batch and exactly-once hold', async () => {
    const r = await runCli(['train', '--workers', '3', '--elastic', '--dataset', 'synthetic-regression', '--batch-size', '16', '--timeout', '4', '--threads', '1',
      '--epochs', '1', '--enable-load-balancing', '--rebalance-interval', '5', '--fault', 'slow:rank=2:ms=25', '--fault', 'kill:rank=1:step=30',
      '--experiments-dir', dir, '--name', 'run'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const ev = lines('events.jsonl');
    const left = ev.find((e) => e.kind === 'membership' && (e.left as number[]).includes(1));
    assert.ok(left, `rank 1 left: ${JSON.stringify(ev.filter((e) => e.kind === 'membership'))}`);
    const decisions = ev.filter((e) => e.kind === 'rebalance');
    const after = decisions.filter((e) => (e.shares as number[]).length === 2);
    assert.ok(decisions.some((e) => (e.shares as number[]).length === 3), 'decided over three members first');
    assert.ok(after.length > 0 && /members changed \(2 members/.test(after[0].reason as string), `a decision at the change: ${JSON.stringify(after[0])}`);
    assert.equal(after[0].step, left!.step);
    // Members 0 and 2: the straggler (group rank 1) ends with the smaller share.
    assert.ok((after.at(-1)!.shares as number[])[1] < 0.45, `the straggler's share over the survivors: ${JSON.stringify(after.at(-1))}`);
    const steps = lines('metrics.jsonl').filter((l) => l.kind === 'step');
    const byStep = new Map<number, Array<Record<string, unknown>>>();
    for (const s of steps) byStep.set(s.step as number, [...(byStep.get(s.step as number) ?? []), s]);
    for (const [step, rs] of byStep) {
      const newest = Math.max(...rs.map((x) => x.member_epoch as number));
      const kept = rs.filter((x) => x.member_epoch === newest);
      const members = kept[0].members as number;
      if (kept.length === members && (kept[0].data_global as number) === members * 16) {
        assert.equal(kept.reduce((a, x) => a + (x.samples as number), 0), members * 16, `step ${step}`);
      }
    }
    assert.ok(steps.some((s) => s.rank === 2 && (s.samples as number) < 16), 'the straggler took less than an equal share');
    const check = checkExactlyOnce(join(dir, 'run', 'metrics.jsonl'), SYNTHETIC_REGRESSION.train, 0);
    assert.deepEqual(check.problems, []);
    assert.equal(check.epochsExact, 1);
  });
});
