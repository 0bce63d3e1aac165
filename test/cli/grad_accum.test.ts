import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ResultFile } from '../../src/metrics/result_file.js';
import { runCliProcess, stepRecords, tempDir } from '../helpers/cluster.js';

let dir = '';
before(() => {
  dir = tempDir('grad-accum-cli');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('--grad-accum through the cluster strategies', { timeout: 120_000 }, () => {
  for (const strategy of ['ps', 'async-ps'] as const) {
    it(`${strategy}: every worker step takes K × batch samples, and the run ends normally`, async () => {
      const name = `ga-${strategy}`;
      const exit = await runCliProcess([
        'train', '--workers', '2', '--strategy', strategy, '--dataset', 'synthetic-regression', '--model', 'mlp', '--hidden', '8',
        '--batch-size', '4', '--grad-accum', '3', '--max-steps', '4', '--threads', '1', '--timeout', '20',
        '--experiments-dir', dir, '--name', name,
      ], { timeoutMs: 90_000 });
      assert.equal(exit.code, 0, exit.stderr);
      const res = JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as ResultFile;
      assert.equal(res.config.grad_accum, 3);
      const workerSteps = stepRecords(join(dir, name, 'metrics.jsonl')).filter((s) => s.samples > 0);
      assert.ok(workerSteps.length >= 4);
      for (const s of workerSteps) assert.equal(s.samples, 12, `step ${s.step} rank ${s.rank}`);
    });
  }
});
