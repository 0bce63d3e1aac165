/**
 * The first `npm install` / `npx smolcluster` of a clone compiles for about 35 s: it must say so
 * (issue 33 §7). npm hides lifecycle output unless `foreground-scripts` is set, so the project's
 * .npmrc sets it, and each build step prints its line before the long part.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const root = new URL('../../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

test('the first build of a clone says what it is doing', () => {
  assert.match(read('.npmrc'), /^foreground-scripts=true$/m);
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  assert.match(scripts.prepare, /^node -e "console\.error\('smolcluster: compiling the TypeScript sources[^']*'\)" && tsc /);
  const native = read('scripts/build-native.mjs');
  const says = native.indexOf("console.log('smolcluster: building the native addon from source");
  assert.ok(says > 0 && says < native.indexOf("spawnSync(process.execPath, args"), 'the line comes before node-gyp runs');
});
