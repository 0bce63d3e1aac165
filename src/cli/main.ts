#!/usr/bin/env node
/**
 * The `smolcluster` command: program.ts, run from its bundle (dist/src/cli/bundle/, written by
 * scripts/bundle-cli.mjs after tsc: a command's code in a few files instead of ~450 modules, which a
 * process of a local cluster spent most of its start resolving and reading) unless the bundle is
 * missing or older than the last compile (a `tsc` after `npm run build`), then program.ts's own
 * modules, so a developer who only recompiles never runs stale code.
 */
import { statSync } from 'node:fs';

const BUNDLE = new URL('./bundle/program.js', import.meta.url);
/** tsc's record of its last compile (in a checkout; an installed package has none). */
const COMPILED = new URL('../../tsconfig.tsbuildinfo', import.meta.url);

function bundleIsCurrent(): boolean {
  const bundled = statSync(BUNDLE, { throwIfNoEntry: false });
  const compiled = statSync(COMPILED, { throwIfNoEntry: false });
  return bundled !== undefined && (compiled === undefined || bundled.mtimeMs >= compiled.mtimeMs);
}

await import(bundleIsCurrent() ? BUNDLE.href : './program.js');
