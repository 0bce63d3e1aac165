/**
 * The install script and the prebuilt addon (issue 23 §7): during `npm install` a prebuild for this
 * platform that matches the native sources and loads is used and nothing is compiled; one built from
 * other sources is not, and the script goes on to build from source. Each case runs the real script
 * from a copy in a temp package root (no node-gyp there, so "building" ends at once, as on a machine
 * without one).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeInternals } from '../../src/tensor/backends/native.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const { nativeSourceHash, stampPathFor } = createRequire(import.meta.url)(join(ROOT, 'scripts', 'native-source-hash.cjs')) as {
  nativeSourceHash(root: string): string | null;
  stampPathFor(addonPath: string): string;
};
const temps: string[] = [];
after(() => { for (const t of temps) rmSync(t, { recursive: true, force: true }); });

/** A package root holding the install script, one native source and a prebuild (the real addon, linked) stamped with stamp(hash). */
function rootWithPrebuild(stamp: (hash: string) => string): string {
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-install-'));
  temps.push(root);
  mkdirSync(join(root, 'scripts'));
  for (const f of ['build-native.mjs', 'native-source-hash.cjs']) copyFileSync(join(ROOT, 'scripts', f), join(root, 'scripts', f));
  writeFileSync(join(root, 'binding.gyp'), "{ 'targets': [] }\n");
  mkdirSync(join(root, 'src', 'native'), { recursive: true });
  writeFileSync(join(root, 'src', 'native', 'a.cc'), 'int a() { return 1; }\n');
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  mkdirSync(dir, { recursive: true });
  symlinkSync(nativeInternals()!.path, join(dir, 'smolcluster.node'));
  writeFileSync(stampPathFor(join(dir, 'smolcluster.node')), `${stamp(nativeSourceHash(root)!)}\n`);
  return root;
}

function install(root: string): string {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_lifecycle_event: 'install' };
  for (const k of ['npm_config_node_gyp', 'SMOLCLUSTER_SKIP_NATIVE', 'SMOLCLUSTER_BUILD_FROM_SOURCE']) delete env[k];
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr); // the install script never fails an install
  return r.stdout;
}

const noAddon = nativeInternals() === null ? 'native addon not built' : false;

test('npm install uses a prebuild that matches the sources and compiles nothing', { skip: noAddon }, () => {
  const root = rootWithPrebuild((hash) => hash);
  const out = install(root);
  assert.match(out, /using the prebuilt native addon \(.+\); nothing to compile/);
  assert.ok(!existsSync(join(root, 'build')), 'nothing was built');
});

test('a prebuild from other sources is not used: the script builds from source', { skip: noAddon }, () => {
  const root = rootWithPrebuild(() => 'ef'.repeat(32));
  const out = install(root);
  assert.match(out, /prebuilt addon was built from other native sources; building from source/);
  assert.match(out, /native addon not built \(node-gyp not found\)/);
});
