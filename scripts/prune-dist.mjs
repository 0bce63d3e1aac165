#!/usr/bin/env node
/**
 * Removes what tsc wrote into dist/ for sources that no longer exist. tsc never deletes, so after a
 * file is renamed or removed its old .js (and .d.ts, .map) stays in dist/: a removed test would
 * still run under `npm test`, and a removed module would still import. Runs after tsc in build,
 * prepare and test. `node scripts/prune-dist.mjs [ROOT]` (default: the package root).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUTPUTS = ['.d.ts.map', '.js.map', '.d.ts', '.js'];
/** scripts/bundle-cli.mjs's output, not tsc's: it rebuilds the folder whole. */
const BUNDLE = join('src', 'cli', 'bundle');

/** The source a dist file was compiled from (dist/src/a/b.js → src/a/b.ts), or null if it is not tsc's. */
function sourceOf(root, file) {
  const ext = OUTPUTS.find((e) => file.endsWith(e));
  if (!ext) return null;
  const rel = relative(join(root, 'dist'), file);
  if (rel.startsWith(BUNDLE + '/')) return null;
  return join(root, rel.slice(0, -ext.length) + '.ts');
}

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

export function pruneDist(root) {
  const dist = join(root, 'dist');
  if (!existsSync(dist)) return [];
  const removed = walk(dist, []).filter((f) => {
    const src = sourceOf(root, f);
    return src !== null && !existsSync(src);
  });
  for (const f of removed) rmSync(f);
  return removed.map((f) => relative(root, f));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..');
  const removed = pruneDist(root);
  if (removed.length > 0) process.stderr.write(`prune-dist: removed ${removed.length} file(s) whose source is gone: ${removed.join(', ')}\n`);
}
