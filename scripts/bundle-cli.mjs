#!/usr/bin/env node
/**
 * Bundles the command-line program (dist/src/cli/program.js and the dist/src modules it imports) into
 * dist/src/cli/bundle/, which dist/src/cli/main.js runs: one entry and a chunk per command's code
 * rather than ~450 ES modules, whose resolution, reading and linking were most of a process's start
 * (a 2-worker `train` of 3 steps: 3.5 CPU-seconds unbundled, 1.95 bundled). Runs after tsc in build,
 * prepare and test. npm packages stay imports (node_modules), as do node: modules.
 *
 * Each module's `import.meta.url` is rewritten to its own file's URL in dist/src (relative to the
 * bundle folder, so an installed package works wherever it lies): the paths a module resolves from
 * it (package.json, the native addon, worker-thread scripts, the dashboard's pages, the CLI it
 * spawns) are the ones it resolves unbundled.
 *
 * Without esbuild (a dependency's production install compiles nothing) it removes any old bundle
 * and says so: main.js then runs the modules themselves.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/src/cli');
const out = join(cli, 'bundle');

/** An esbuild plugin: every dist/src module keeps its own import.meta.url. */
const ownImportMetaUrl = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /[\\/]dist[\\/]src[\\/].*\.js$/ }, ({ path }) => {
      const text = readFileSync(path, 'utf8');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'js' };
      const own = `new URL(${JSON.stringify(relative(out, path).split('\\').join('/'))}, import.meta.url).href`;
      return { contents: text.replaceAll('import.meta.url', own), loader: 'js', resolveDir: dirname(path) };
    });
  },
};

rmSync(out, { recursive: true, force: true });
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('bundle-cli: esbuild is not installed; the CLI runs unbundled (slower to start)');
  process.exit(0);
}
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [join(cli, 'program.js')],
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  plugins: [ownImportMetaUrl],
  logLevel: 'warning',
});
