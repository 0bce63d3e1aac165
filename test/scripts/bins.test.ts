/**
 * The package's commands run as the README's quick start runs them: `npx smolcluster` in the
 * project folder executes package.json's bin file directly, which needs the executable bit that
 * scripts/mark-bins-executable.mjs sets after tsc (tsc writes 0644, and npm does not touch the root
 * package's own bins).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('every package.json bin is executable and runs by its path (what npx does in the project folder)', () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string; bin: Record<string, string> };
  assert.deepEqual(Object.keys(pkg.bin).sort(), ['minicluster', 'smolcluster']);
  for (const [name, file] of Object.entries(pkg.bin)) {
    assert.ok((statSync(`${ROOT}${file}`).mode & 0o111) !== 0, `${name}: ${file} is not executable`);
    assert.equal(readFileSync(`${ROOT}${file}`, 'utf8').split('\n')[0], '#!/usr/bin/env node', `${name}: ${file} has no node shebang`);
  }
  assert.equal(execFileSync(`${ROOT}${pkg.bin.smolcluster}`, ['--version'], { encoding: 'utf8' }).trim(), pkg.version);
});
