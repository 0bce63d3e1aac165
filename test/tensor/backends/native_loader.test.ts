/**
 * Which addon the native backend loads: the prebuilt one shipped in the package
 * (prebuilds/<platform>-<arch>) first, then the one built from source (build/Release), each only if
 * its source stamp matches; a missing one is passed over quietly, a stale or broken one with its
 * reason; a stale one that leaves nothing loadable is an error (stale), a broken one a fallback.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { addonCandidates, loadFirst, nativeInternals } from '../../../src/tensor/backends/native.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..', '..'); // dist/test/tensor/backends -> repo root
const { nativeSourceHash, stampPathFor } = createRequire(import.meta.url)(join(repo, 'scripts', 'native-source-hash.cjs')) as {
  nativeSourceHash(root: string): string | null;
  stampPathFor(addonPath: string): string;
};
const temps: string[] = [];
after(() => { for (const t of temps) rmSync(t, { recursive: true, force: true }); });

/** A package root with one native source and the hash script; its two candidate addons are not there yet. */
function fakeRoot(): { root: string; prebuilt: string; built: string; hash: string } {
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-loader-'));
  temps.push(root);
  mkdirSync(join(root, 'scripts'));
  writeFileSync(join(root, 'scripts', 'native-source-hash.cjs'), `module.exports = require(${JSON.stringify(join(repo, 'scripts', 'native-source-hash.cjs'))});\n`);
  writeFileSync(join(root, 'binding.gyp'), "{ 'targets': [] }\n");
  mkdirSync(join(root, 'src', 'native'), { recursive: true });
  writeFileSync(join(root, 'src', 'native', 'a.cc'), 'int a() { return 1; }\n');
  const [prebuilt, built] = addonCandidates(root, '').map((c) => c.path);
  mkdirSync(dirname(prebuilt), { recursive: true });
  mkdirSync(dirname(built), { recursive: true });
  return { root, prebuilt, built, hash: nativeSourceHash(root)! };
}

/** Puts an addon at path: the real one (a link; require resolves it to the module already loaded) or junk. */
function place(path: string, what: 'real' | 'junk', stamp: string): void {
  const real = nativeInternals()?.path;
  if (what === 'real') symlinkSync(real!, path);
  else writeFileSync(path, 'not an addon');
  writeFileSync(stampPathFor(path), `${stamp}\n`);
}

describe('native addon candidates', () => {
  it('prebuilds/<platform>-<arch> first, then build/Release; SMOLCLUSTER_NATIVE_ADDON alone when set', () => {
    assert.deepEqual(addonCandidates('/pkg', '', 'linux-x64'), [
      { path: '/pkg/prebuilds/linux-x64/smolcluster.node', origin: 'prebuilt' },
      { path: '/pkg/build/Release/smolcluster.node', origin: 'built from source' },
    ]);
    assert.deepEqual(addonCandidates('/pkg', '/elsewhere/x.node', 'linux-x64'), [{ path: '/elsewhere/x.node', origin: 'SMOLCLUSTER_NATIVE_ADDON' }]);
    assert.deepEqual(addonCandidates(null, '', 'linux-x64'), []);
  });
});

describe('loading the first candidate that works', { skip: nativeInternals() === null && process.env.CI !== 'true' ? 'native addon not built' : false }, () => {
  it('takes the prebuilt addon when its stamp matches', () => {
    const { root, prebuilt, built, hash } = fakeRoot();
    place(prebuilt, 'real', hash);
    place(built, 'real', hash);
    const got = loadFirst(addonCandidates(root, ''), root);
    assert.equal(got.result.reason, null);
    assert.equal(got.origin, 'prebuilt');
    assert.equal(got.path, prebuilt);
  });

  it('without a prebuild (a git checkout) loads build/Release, quietly', () => {
    const { root, built, hash } = fakeRoot();
    place(built, 'real', hash);
    const got = loadFirst(addonCandidates(root, ''), root);
    assert.equal(got.origin, 'built from source');
    assert.deepEqual(got.passedOver, []);
  });

  it('passes over a prebuild from other sources, saying so, when the source build matches', () => {
    const { root, prebuilt, built, hash } = fakeRoot();
    place(prebuilt, 'real', 'ab'.repeat(32));
    place(built, 'real', hash);
    const got = loadFirst(addonCandidates(root, ''), root);
    assert.equal(got.origin, 'built from source');
    assert.equal(got.passedOver!.length, 1);
    assert.match(got.passedOver![0], /^prebuilt .*prebuilds.*: stale native addon: .* hash abababababababab/);
  });

  it('a stale prebuild with no other addon is an error (stale), naming it', () => {
    const { root, prebuilt } = fakeRoot();
    place(prebuilt, 'real', 'cd'.repeat(32));
    const got = loadFirst(addonCandidates(root, ''), root);
    assert.equal(got.result.backend, null);
    assert.equal(got.result.stale, true);
    assert.match(got.result.reason!, /prebuilt .*stale native addon/);
  });

  it('a prebuild that does not load here falls through to the source build, or to js with both reasons', () => {
    const { root, prebuilt, built, hash } = fakeRoot();
    place(prebuilt, 'junk', hash);
    const none = loadFirst(addonCandidates(root, ''), root);
    assert.equal(none.result.backend, null);
    assert.equal(none.result.stale, false);
    assert.match(none.result.reason!, /prebuilt .*: addon failed to load/);
    place(built, 'real', hash);
    const got = loadFirst(addonCandidates(root, ''), root);
    assert.equal(got.origin, 'built from source');
    assert.match(got.passedOver![0], /addon failed to load/);
  });

  it('with neither, the reason is the source build\'s "not built"', () => {
    const { root } = fakeRoot();
    const got = loadFirst(addonCandidates(root, ''), root);
    assert.equal(got.result.stale, false);
    assert.match(got.result.reason!, /addon not built \(.*build\/Release\/smolcluster\.node is missing/);
  });
});
