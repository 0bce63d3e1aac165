/**
 * Correctness across strategies, end to end through the CLI: every multi-process strategy, run by
 * real worker processes at batch B, must match the single-process `local` strategy at batch N·B
 * step by step (`smolcluster validate` exits 0) — and a run whose gradient synchronisation is
 * broken on purpose (the documented `skip-allreduce` fault) must fail it (exit 1).
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { runCliProcess, tempDir } from '../helpers/cluster.js';

/** Strategies checked against `local`; a new one is one more entry. */
const STRATEGIES = ['allreduce', 'ps'] as const;

const WORKERS = 2;
const BATCH = 16;
const STEPS = 25;
const TOLERANCE = '1e-4';

let dir = '';
let reference = '';
/** Each run's printed output, by tag. */
const printed = new Map<string, { stdout: string; stderr: string }>();
before(async () => {
  dir = tempDir('cross');
  reference = await run('local', 1, WORKERS * BATCH);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(strategy: string, workers: number, batch: number, env: Record<string, string> = {}, tag = strategy): Promise<string> {
  const out = join(dir, `${tag}.json`);
  const exit = await runCliProcess([
    'run', '--strategy', strategy, '--workers', String(workers), '--batch-size', String(batch), '--steps', String(STEPS), '--seed', '7',
    '--hidden', '32', '--threads', '1', '--timeout', '20', '--experiments-dir', dir, '--name', tag, '--output', out,
  ], { env, timeoutMs: 90_000 });
  assert.equal(exit.code, 0, `${tag}: ${exit.stderr}`);
  printed.set(tag, { stdout: exit.stdout, stderr: exit.stderr });
  return out;
}

describe('cross-strategy validation (real processes)', { timeout: 120_000 }, () => {
  for (const strategy of STRATEGIES) {
    it(`${strategy}, ${WORKERS} workers at batch ${BATCH} = local at batch ${WORKERS * BATCH}, step by step`, async () => {
      const candidate = await run(strategy, WORKERS, BATCH);
      const report = join(dir, `${strategy}-report.json`);
      const v = await runCli(['validate', reference, candidate, '--tolerance', TOLERANCE, '--output', report]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const j = JSON.parse(readFileSync(report, 'utf8'));
      assert.equal(j.summary.steps_compared, STEPS);
      assert.equal(j.candidate.strategy, strategy);
      assert.equal(j.reference.global_batch_size, j.candidate.global_batch_size);
      // The workers are counted as workers (a ps server is not one); the server's bar shows their throughput.
      assert.equal(j.candidate.num_workers, WORKERS);
      const { stdout, stderr } = printed.get(strategy)!;
      assert.match(stdout, new RegExp(`with ${WORKERS} workers${strategy === 'ps' ? ' and a server' : ''} \\(${strategy}\\)`));
      if (strategy === 'ps') assert.match(stderr, new RegExp(`^server ${STEPS}/${STEPS} .*samples/s [1-9]\\d*$`, 'm'));
    });
  }

  it('broken gradient synchronisation (SMOLCLUSTER_FAULT=skip-allreduce) fails validation', async () => {
    const broken = await run('allreduce', WORKERS, BATCH, { SMOLCLUSTER_FAULT: 'skip-allreduce' }, 'broken');
    const v = await runCli(['validate', reference, broken, '--tolerance', '0.01']);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, /FAIL: \d+ of 25 steps differ by more than the tolerance \(first: step \d+\)/);
    // Step 0 is computed before any update: it still agrees.
    assert.match(v.stdout, /^step\s/m);
    assert.doesNotMatch(v.stdout, /^0\s.*FAIL$/m);
    // And the fault is recorded where it acted.
    const events = readFileSync(join(dir, 'broken', 'events.jsonl'), 'utf8');
    assert.match(events, /"kind":"fault_injected","fault":"skip-allreduce"/);
  });
});
