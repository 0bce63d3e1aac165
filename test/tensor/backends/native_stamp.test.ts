/**
 * The stale-addon check: an addon whose source stamp differs from the native sources beside it is
 * refused with both hashes and the fix, a matching one loads, and without sources there is no check.
 * Every case builds its own package root in a temp dir (the hash is cached per root and process).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAddonAt, nativeInternals } from '../../../src/tensor/backends/native.js';
import { staleAddonReason } from '../../../src/tensor/backends/native_stamp.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..', '..'); // dist/test/tensor/backends -> repo root
const hashScript = join(repo, 'scripts', 'native-source-hash.cjs');
const { nativeSourceHash, stampPathFor } = createRequire(import.meta.url)(hashScript) as {
  nativeSourceHash(root: string): string | null;
  stampPathFor(addonPath: string): string;
};
const temps: string[] = [];
after(() => { for (const t of temps) rmSync(t, { recursive: true, force: true }); });

/** A package root with a few native sources and the hash script; returns it and its addon path. */
function fakeRoot(withSources = true): { root: string; addon: string } {
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-stamp-'));
  temps.push(root);
  mkdirSync(join(root, 'scripts'));
  copyFileSync(hashScript, join(root, 'scripts', 'native-source-hash.cjs'));
  if (withSources) {
    writeFileSync(join(root, 'binding.gyp'), "{ 'targets': [] }\n");
    mkdirSync(join(root, 'src', 'native', 'sub'), { recursive: true });
    writeFileSync(join(root, 'src', 'native', 'a.cc'), 'int a() { return 1; }\n');
    writeFileSync(join(root, 'src', 'native', 'sub', 'b.h'), '#pragma once\n');
  }
  mkdirSync(join(root, 'build', 'Release'), { recursive: true });
  return { root, addon: join(root, 'build', 'Release', 'smolcluster.node') };
}

test('a stamp naming other sources is refused with both hashes and the fix', () => {
  const { root, addon } = fakeRoot();
  writeFileSync(addon, 'not an addon');
  const built = 'ab'.repeat(32);
  writeFileSync(stampPathFor(addon), `${built}\n`);
  const now = nativeSourceHash(root)!;
  const loaded = loadAddonAt(addon, root);
  assert.equal(loaded.result.backend, null);
  assert.equal(loaded.result.stale, true);
  const reason = loaded.result.reason!;
  assert.match(reason, /stale native addon/);
  assert.ok(reason.includes(built.slice(0, 16)) && reason.includes(now.slice(0, 16)), reason);
  assert.ok(reason.includes('run `node scripts/build-native.mjs`'), reason);
  assert.ok(reason.includes(addon), reason);
});

test('an addon without a stamp is refused when sources are present', () => {
  const { root, addon } = fakeRoot();
  writeFileSync(addon, 'not an addon');
  const reason = staleAddonReason(addon, root);
  assert.ok(reason !== null && reason.includes('no source stamp') && reason.includes('node scripts/build-native.mjs'), String(reason));
});

test('editing a header in a subdirectory changes the hash', () => {
  const { root } = fakeRoot();
  const before = nativeSourceHash(root);
  writeFileSync(join(root, 'src', 'native', 'sub', 'b.h'), '#pragma once\n// new argument\n');
  assert.notEqual(nativeSourceHash(root), before);
  writeFileSync(join(root, 'binding.gyp'), "{ 'targets': [ ] }\n");
  assert.notEqual(nativeSourceHash(root), before);
});

test('without shipped sources there is nothing to compare: no check', () => {
  const { root, addon } = fakeRoot(false);
  writeFileSync(addon, 'not an addon');
  assert.equal(nativeSourceHash(root), null);
  assert.equal(staleAddonReason(addon, root), null);
});

test('an addon whose stamp matches the sources loads', (t) => {
  const real = nativeInternals()?.path;
  if (!real) {
    if (process.env.CI === 'true') assert.fail('the native addon is not built (required under CI=true)');
    t.skip('native addon not built');
    return;
  }
  const { root, addon } = fakeRoot();
  symlinkSync(real, addon); // require() resolves the link: the same module, no second dlopen
  writeFileSync(stampPathFor(addon), `${nativeSourceHash(root)}\n`);
  assert.equal(staleAddonReason(addon, root), null);
  const loaded = loadAddonAt(addon, root);
  assert.equal(loaded.result.reason, null);
  assert.equal(loaded.result.stale, false);
  assert.ok(loaded.result.backend !== null);
});

/** Runs one float32 op in a fresh process with the addon at addonPath and the given backend choice. */
function runOp(addonPath: string, backend: string | undefined): { status: number | null; stderr: string } {
  const dispatch = resolve(here, '..', '..', '..', 'src', 'tensor', 'dispatch.js');
  const env: NodeJS.ProcessEnv = { ...process.env, SMOLCLUSTER_NATIVE_ADDON: addonPath };
  delete env.SMOLCLUSTER_BACKEND;
  if (backend) env.SMOLCLUSTER_BACKEND = backend;
  const script = `import(${JSON.stringify(dispatch)}).then((d) => { d.backend(); console.log('ok'); })`;
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

test('a stale addon stops the automatic choice; SMOLCLUSTER_BACKEND=js still runs', () => {
  const { addon } = fakeRoot(false);
  writeFileSync(addon, 'not an addon');
  writeFileSync(stampPathFor(addon), `${'cd'.repeat(32)}\n`); // checked against the repo's own sources
  const auto = runOp(addon, undefined);
  assert.notEqual(auto.status, 0);
  assert.match(auto.stderr, /stale native addon: .* hash cdcdcdcdcdcdcdcd.*run `node scripts\/build-native\.mjs`/);
  const js = runOp(addon, 'js');
  assert.equal(js.status, 0, js.stderr);
});
