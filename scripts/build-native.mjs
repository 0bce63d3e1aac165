#!/usr/bin/env node
/**
 * Builds the native addon (npm's install step). It must never fail the install: when the build
 * or the smoke-load fails, one line says why and the pure-TypeScript backend is used instead.
 *
 * As npm's install step it first tries the prebuilt addon the package ships
 * (prebuilds/<platform>-<arch>/, scripts/prebuild.mjs): when it matches the sources and loads here,
 * nothing is compiled (the loader takes it first anyway). Run by hand, it always builds.
 *
 *   SMOLCLUSTER_SKIP_NATIVE=1   skip the build
 *   SMOLCLUSTER_BUILD_FROM_SOURCE=1 build even when the prebuilt addon would do
 *   SMOLCLUSTER_NATIVE_LIBS=... restrict the kernel libraries (see scripts/detect-native-libs.mjs)
 *   SMOLCLUSTER_NATIVE_VERBOSE=1 show the compiler output
 *
 * node-gyp comes from npm (npm_config_node_gyp) or this package's node_modules. Node's headers
 * are taken from npm's `nodedir` when npm passes it, else from the running node's own install
 * prefix (distribution packages and official tarballs ship include/node), so no download is
 * needed on an offline machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const verbose = process.env.SMOLCLUSTER_NATIVE_VERBOSE === '1';
const { nativeSourceHash, stampPathFor } = require('./native-source-hash.cjs');

function notBuilt(reason) {
  console.log(`smolcluster: native addon not built (${reason}); using the pure-TypeScript backend`);
  process.exit(0);
}

function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return null;
  }
}

/** A directory whose include/node holds node_api.h, so node-gyp needs no header download. */
function findNodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured) return configured;
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

/** The most telling line of a failed build: a compiler error, else node-gyp's own reason. */
function firstError(output) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const patterns = [
    /\b(fatal )?error: .*/, // compiler or linker
    /You need to install .*/, // node-gyp: missing Python / toolchain
    /gyp ERR! stack Error: (.*)/,
    /make: \*\*\* .*/,
  ];
  for (const re of patterns) {
    for (const l of lines) {
      const m = re.exec(l);
      if (m) return (m[1] ?? m[0]).slice(0, 200);
    }
  }
  return (lines.at(-1) ?? 'no output').slice(0, 200);
}

/**
 * The description of the prebuilt addon for this platform when, during `npm install`, it was built
 * from these sources and loads here; null (with a line saying why, if it exists) otherwise.
 */
function usablePrebuild(sourceHash) {
  if (process.env.npm_lifecycle_event !== 'install' || process.env.SMOLCLUSTER_BUILD_FROM_SOURCE === '1') return null;
  const addon = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'smolcluster.node');
  if (!existsSync(addon)) return null;
  const stamp = stampPathFor(addon);
  const built = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : null;
  if (sourceHash !== null && built !== sourceHash) {
    console.log('smolcluster: the prebuilt addon was built from other native sources; building from source');
    return null;
  }
  try {
    return require(addon).description;
  } catch (e) {
    console.log(`smolcluster: the prebuilt addon does not load here (${String(e.message).split('\n')[0]}); building from source`);
    return null;
  }
}

function build() {
  if (process.env.SMOLCLUSTER_SKIP_NATIVE === '1') notBuilt('SMOLCLUSTER_SKIP_NATIVE=1');
  // Hash the sources as they are when the compiler reads them; no stamp survives a failed build.
  const sourceHash = nativeSourceHash(root);
  const prebuilt = usablePrebuild(sourceHash);
  if (prebuilt !== null) {
    console.log(`smolcluster: using the prebuilt native addon (${prebuilt}); nothing to compile`);
    return;
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) notBuilt('node-gyp not found');
  const addon = join(root, 'build', 'Release', 'smolcluster.node');
  rmSync(stampPathFor(addon), { force: true });
  const args = [nodeGyp, 'rebuild', '--jobs', 'max'];
  const nodedir = findNodeDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  // npm shows nothing else for the half minute a build takes: say what is going on first.
  console.log('smolcluster: building the native addon from source (once; about 30 s on 2 cores; SMOLCLUSTER_NATIVE_VERBOSE=1 shows the compiler)');
  const started = Date.now();
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: verbose ? 'inherit' : 'pipe',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 15 * 60 * 1000,
  });
  const output = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  if (!verbose) saveLog(output);
  if (r.error) notBuilt(`node-gyp could not run: ${r.error.message}`);
  if (r.status !== 0) notBuilt(`node-gyp failed: ${firstError(output)}; see build/native-build.log`);
  let description;
  try {
    description = require(addon).description;
  } catch (e) {
    notBuilt(`the built addon does not load: ${String(e.message).split('\n')[0]}`);
  }
  // The loader refuses an addon whose stamp differs from the sources' hash (a stale build).
  if (sourceHash !== null) writeFileSync(stampPathFor(addon), `${sourceHash}\n`);
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`smolcluster: native addon built in ${secs} s: ${description}`);
}

function saveLog(output) {
  try {
    mkdirSync(join(root, 'build'), { recursive: true });
    writeFileSync(join(root, 'build', 'native-build.log'), output);
  } catch {
    // the log is a convenience; never let it fail the install
  }
}

try {
  build();
} catch (e) {
  notBuilt(`unexpected error: ${e instanceof Error ? e.message : String(e)}`);
}
