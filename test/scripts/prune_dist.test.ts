/** scripts/prune-dist.mjs, run after tsc: compiled files whose source is gone leave dist/. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const SCRIPT = fileURLToPath(new URL('../../../scripts/prune-dist.mjs', import.meta.url));

test('removes the outputs of deleted sources and keeps the rest', () => {
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-prune-'));
  const touch = (rel: string): void => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), '');
  };
  try {
    touch('src/kept/a.ts');
    touch('test/a.test.ts');
    const kept = ['dist/src/kept/a.js', 'dist/src/kept/a.d.ts', 'dist/src/kept/a.js.map', 'dist/test/a.test.js', 'dist/src/kept/notes.json'];
    const gone = ['dist/src/kept/old.js', 'dist/src/kept/old.d.ts', 'dist/src/kept/old.js.map', 'dist/src/kept/old.d.ts.map', 'dist/test/removed.test.js'];
    [...kept, ...gone].forEach(touch);
    const run = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /removed 5 file\(s\) whose source is gone/);
    for (const f of kept) assert.ok(existsSync(join(root, f)), `${f} was removed`);
    for (const f of gone) assert.ok(!existsSync(join(root, f)), `${f} is still there`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
