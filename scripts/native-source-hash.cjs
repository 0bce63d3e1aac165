/**
 * The content hash of the native addon's sources (src/native/**\/*.cc|*.h and binding.gyp).
 *
 * scripts/build-native.mjs writes it beside the built addon (smolcluster.node.sources); the loader
 * (src/tensor/backends/native.ts) recomputes it from the shipped sources and refuses an addon built
 * from other sources, so a stale build never runs silently. CommonJS so that both the install
 * script (before TypeScript is compiled) and the compiled loader can require it synchronously.
 */
'use strict';
const { createHash } = require('node:crypto');
const { existsSync, readdirSync, readFileSync } = require('node:fs');
const { join, relative, sep } = require('node:path');

/** The file beside an addon that records the hash of the sources it was built from. */
function stampPathFor(addonPath) {
  return `${addonPath}.sources`;
}

function nativeSourceFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...nativeSourceFiles(path));
    else if (/\.(cc|h)$/.test(entry.name)) files.push(path);
  }
  return files;
}

/**
 * sha256 over each source's path (relative to root, '/'-separated, sorted) and contents; null when
 * the sources are not there (an install that ships only the built addon), so the check is skipped.
 */
function nativeSourceHash(root) {
  const gyp = join(root, 'binding.gyp');
  const nativeDir = join(root, 'src', 'native');
  if (!existsSync(gyp) || !existsSync(nativeDir)) return null;
  const named = [gyp, ...nativeSourceFiles(nativeDir)]
    .map((path) => ({ path, name: relative(root, path).split(sep).join('/') }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hash = createHash('sha256');
  for (const { path, name } of named) {
    const bytes = readFileSync(path);
    // Name and length first, so moving bytes between files changes the hash.
    hash.update(`${name}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

module.exports = { nativeSourceHash, stampPathFor };
