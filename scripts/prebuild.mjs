#!/usr/bin/env node
/**
 * Builds prebuilds/<platform>-<arch>/ (npm's prepack step, and .ci/run before the tests): the native
 * addon as built from this checkout's sources, its source stamp, and the shared libraries it needs
 * beyond glibc and the GCC C++ runtime, copied beside it with their Debian copyright files: on
 * linux-x64 oneDNN and what oneDNN links (libgomp, libOpenCL); on linux-arm64 OpenBLAS, libgfortran
 * and libgomp. The addon is linked with RPATH $ORIGIN (binding.gyp), so the copies beside it are the
 * ones loaded. `npm install --ignore-scripts` then has the fast kernels on a machine without the
 * libraries' -dev packages (docs/NATIVE.md, "Prebuilt addon").
 *
 *   --target linux-arm64         on linux-x64: the addon cross-built by scripts/arm64-build.sh (run
 *                                here when .arm64/'s build is stale), its libraries resolved by the
 *                                arm64 loader and its loading checked with the arm64 Node, under qemu
 *   SMOLCLUSTER_SKIP_PREBUILD=1  skip (npm pack without the libraries at hand: the package then builds from source)
 *   --force                      rebuild the directory even when its stamp matches the sources
 *
 * Only Linux is prebuilt; elsewhere one line says so and nothing is written. The build must have its
 * fast library (oneDNN on x64, oneDNN or OpenBLAS on arm64): a prebuild without it would not be the
 * fast path it stands for, so that is an error.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const { nativeSourceHash, stampPathFor } = require('./native-source-hash.cjs');

const HOST = `${process.platform}-${process.arch}`;
const TARGET = targetArgument() ?? HOST;
const ADDON = 'smolcluster.node';
const outDir = join(root, 'prebuilds', TARGET);
/** Where the arm64 Node and the cross-built addon live (scripts/arm64-build.sh; its default Node version). */
const ARM64_CACHE = join(root, '.arm64');
const ARM64_NODE = join(ARM64_CACHE, `node-${process.env.ARM64_NODE_VERSION ?? '20.20.2'}`, 'bin', 'node');

/**
 * How a target's prebuild is made here: the addon's path and how to build it, the command that lists
 * the libraries the loader resolves for it (ldd's output), the Node that loads it to check, and the
 * libraries one of which must be bundled for it to be the fast path.
 */
function toolchainFor(target) {
  const fast = target === 'linux-x64' ? ['libdnnl'] : ['libdnnl', 'libopenblas'];
  if (target === HOST && (HOST === 'linux-x64' || HOST === 'linux-arm64')) {
    const build = () => spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { cwd: root, stdio: 'inherit' });
    return { built: join(root, 'build', 'Release', ADDON), build, listLibraries: ['ldd'], node: process.execPath, fast };
  }
  if (target === 'linux-arm64' && HOST === 'linux-x64') {
    const build = () => spawnSync('bash', [join(root, 'scripts', 'arm64-build.sh')], { cwd: root, stdio: 'inherit' });
    // The arm64 loader lists what it resolves as ldd does (ldd itself cannot read an aarch64 file); binfmt runs it.
    return { built: join(ARM64_CACHE, 'tree', 'build', 'Release', ADDON), build, listLibraries: ['/lib/ld-linux-aarch64.so.1', '--list'], node: ARM64_NODE, fast };
  }
  return null;
}

function targetArgument() {
  const i = process.argv.indexOf('--target');
  return i < 0 ? null : process.argv[i + 1];
}

/**
 * Libraries every Linux that runs Node already has (Node itself links them): glibc's and the GCC
 * C++ runtime's. Everything else the addon needs is bundled.
 */
const SYSTEM_LIBRARIES = /^(linux-vdso|ld-linux[^ ]*|libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s)\.so(\.\d+)*$/;

function fail(message) {
  console.error(`smolcluster prebuild: ${message}`);
  process.exit(1);
}

function readStamp(addonPath) {
  const stamp = stampPathFor(addonPath);
  return existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : null;
}

/** The toolchain's addon, built now unless its stamp already names these sources. */
function freshBuild(toolchain, hash) {
  const { built } = toolchain;
  if (existsSync(built) && readStamp(built) === hash) return;
  const r = toolchain.build();
  if (r.status !== 0 || !existsSync(built) || readStamp(built) !== hash) {
    fail(`the native addon for ${TARGET} did not build from these sources (see ${join(dirname(dirname(built)), 'native-build.log')}); `
      + 'SMOLCLUSTER_SKIP_PREBUILD=1 packs without a prebuilt addon');
  }
}

/** `name => path` for every shared library the loader resolves for the addon (ldd lists them transitively). */
function resolvedLibraries(toolchain) {
  const [command, ...args] = toolchain.listLibraries;
  const addonPath = toolchain.built;
  const r = spawnSync(command, [...args, addonPath], { encoding: 'utf8' });
  if (r.status !== 0) fail(`${command} ${addonPath} failed: ${(r.stderr || r.stdout || r.error?.message || '').trim()}`);
  const libs = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*(\S+)\s+=>\s+(.+?)\s+\(0x[0-9a-f]+\)\s*$/.exec(line) ?? /^\s*(\S+)\s+=>\s+(not found)\s*$/.exec(line);
    if (!m) continue;
    if (m[2] === 'not found') fail(`${m[1]}, needed by ${addonPath}, is not found by the dynamic loader`);
    libs.push({ soname: m[1], path: m[2] });
  }
  return libs;
}

/** The Debian package that owns a file, its version and its copyright file (null off Debian). */
function debianPackageOf(path) {
  const owner = spawnSync('dpkg', ['-S', realpathSync(path)], { encoding: 'utf8' });
  if (owner.status !== 0) return null;
  // "libgomp1:arm64: /usr/lib/…": the package qualified by its architecture where several are installed.
  const qualified = owner.stdout.slice(0, owner.stdout.indexOf(': ')).trim();
  const pkg = qualified.split(':')[0];
  const version = spawnSync('dpkg-query', ['-W', '-f=${Version}', qualified], { encoding: 'utf8' }).stdout.trim();
  const copyright = join('/usr/share/doc', pkg, 'copyright');
  return { pkg, version, copyright: existsSync(copyright) ? copyright : null };
}

/** Debian's common license texts a copyright file refers to ("License: Apache-2.0", "common-licenses/GPL-3"). */
function commonLicensesIn(text) {
  const names = new Set();
  for (const m of text.matchAll(/(?:^License:\s*|common-licenses\/)([A-Za-z0-9.+-]+)/gm)) {
    const name = m[1].replace(/\+$/, '').replace(/[.']+$/, '');
    if (existsSync(join('/usr/share/common-licenses', name))) names.add(name);
  }
  return [...names];
}

/** Copies the addon, its stamp, the bundled libraries and their licenses into dir; returns the manifest. */
function stage(toolchain, dir, hash) {
  mkdirSync(join(dir, 'LICENSES'), { recursive: true });
  copyFileSync(toolchain.built, join(dir, ADDON));
  writeFileSync(stampPathFor(join(dir, ADDON)), `${hash}\n`);
  const bundled = [];
  for (const { soname, path } of resolvedLibraries(toolchain)) {
    if (SYSTEM_LIBRARIES.test(soname)) continue;
    copyFileSync(realpathSync(path), join(dir, soname));
    const deb = debianPackageOf(path);
    const licenses = [];
    if (deb?.copyright) {
      const name = `${deb.pkg}.copyright`;
      copyFileSync(deb.copyright, join(dir, 'LICENSES', name));
      licenses.push(`LICENSES/${name}`);
      for (const common of commonLicensesIn(readFileSync(deb.copyright, 'utf8'))) {
        copyFileSync(join('/usr/share/common-licenses', common), join(dir, 'LICENSES', common));
        licenses.push(`LICENSES/${common}`);
      }
    }
    if (licenses.length === 0) fail(`no license text found for ${soname} (${path}); refusing to ship it without one`);
    bundled.push({ file: soname, from: path, package: deb ? `${deb.pkg} ${deb.version}` : null, licenses, bytes: statSync(path).size });
  }
  if (!bundled.some((b) => toolchain.fast.some((lib) => b.file.startsWith(lib)))) {
    fail(`the ${TARGET} addon links none of ${toolchain.fast.join(', ')}: install libdnnl-dev `
      + `${TARGET === 'linux-x64' ? '' : 'or libopenblas-dev '}(Debian) and run this again, `
      + 'or set SMOLCLUSTER_SKIP_PREBUILD=1 to pack without a prebuilt addon');
  }
  const builtWithNode = spawnSync(toolchain.node, ['-p', 'process.version'], { encoding: 'utf8' }).stdout.trim();
  return { target: TARGET, addon: ADDON, source_hash: hash, napi_version: 8, built_with_node: builtWithNode, bundled };
}

/**
 * Loads the staged addon in a fresh process with LD_LIBRARY_PATH cleared and checks that it reports
 * oneDNN and that every bundled library was mapped from beside it, not from the system.
 */
function verify(toolchain, dir, manifest) {
  const script = `const a = require(${JSON.stringify(join(dir, ADDON))});
const maps = require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).filter(Boolean);
console.log(JSON.stringify({ description: a.description, fast: a.libraries.dnnl || a.libraries.cblas, maps: [...new Set(maps)] }));`;
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  const r = spawnSync(toolchain.node, ['-e', script], { encoding: 'utf8', env });
  if (r.status !== 0) fail(`the staged addon does not load: ${r.stderr.trim().split('\n')[0]}`);
  const seen = JSON.parse(r.stdout);
  if (!seen.fast) fail(`the staged addon reports no oneDNN or BLAS (${seen.description})`);
  for (const b of manifest.bundled) {
    const mapped = seen.maps.filter((p) => basename(p) === b.file || basename(p).startsWith(`${b.file}.`));
    if (!mapped.every((p) => dirname(p) === dir) || mapped.length === 0) {
      fail(`${b.file} was loaded from ${mapped.join(', ') || 'nowhere'}, not from ${dir}`);
    }
  }
  return seen.description;
}

function main() {
  if (process.env.SMOLCLUSTER_SKIP_PREBUILD === '1') {
    console.log('smolcluster: prebuild skipped (SMOLCLUSTER_SKIP_PREBUILD=1)');
    return;
  }
  const toolchain = toolchainFor(TARGET);
  if (toolchain === null) {
    if (targetArgument() !== null) fail(`cannot build a prebuild for ${TARGET} on ${HOST} (linux-arm64 is cross-built on linux-x64)`);
    console.log(`smolcluster: no prebuild for ${TARGET} (only Linux is prebuilt; this platform builds from source)`);
    return;
  }
  const hash = nativeSourceHash(root);
  if (hash === null) fail('binding.gyp or src/native is missing');
  const force = process.argv.includes('--force');
  if (!force && readStamp(join(outDir, ADDON)) === hash && existsSync(join(outDir, 'prebuild.json'))) {
    console.log(`smolcluster: prebuilds/${TARGET} is up to date (sources ${hash.slice(0, 16)})`);
    return;
  }
  freshBuild(toolchain, hash);
  // Staged beside the target and renamed into place, so a process loading the addon meanwhile never sees half a directory.
  const staging = join(root, 'prebuilds', `.${TARGET}.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    const manifest = stage(toolchain, staging, hash);
    const description = verify(toolchain, staging, manifest);
    writeFileSync(join(staging, 'prebuild.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const old = join(root, 'prebuilds', `.${TARGET}.old-${process.pid}`);
    if (existsSync(outDir)) renameSync(outDir, old);
    renameSync(staging, outDir);
    rmSync(old, { recursive: true, force: true });
    const mb = (manifest.bundled.reduce((s, b) => s + b.bytes, 0) / 2 ** 20).toFixed(1);
    console.log(`smolcluster: prebuilds/${TARGET} built: ${description}; bundled ${manifest.bundled.map((b) => b.file).join(', ')} (${mb} MiB)`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

main();
