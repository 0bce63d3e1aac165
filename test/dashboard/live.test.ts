import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openLiveDashboard } from '../../src/dashboard/live.js';

test('a live dashboard clears the previous run\'s records, but keeps a resumed run\'s metrics.jsonl', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sc-live-'));
  try {
    for (const resuming of [true, false]) {
      const dir = join(root, String(resuming));
      mkdirSync(dir);
      for (const f of ['metrics.jsonl', 'events.jsonl', 'result.json']) writeFileSync(join(dir, f), '{}\n');
      const d = await openLiveDashboard({ dir, name: 'r', port: 0, thread: false, resuming });
      await d.close();
      assert.equal(existsSync(join(dir, 'metrics.jsonl')), resuming, `resuming ${resuming}`);
      assert.equal(existsSync(join(dir, 'result.json')), false);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
