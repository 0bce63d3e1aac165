/**
 * Refuses a stale native addon: one built from other sources than the ones shipped beside it.
 *
 * scripts/build-native.mjs writes the sources' hash beside the addon (smolcluster.node.sources).
 * Here the same hash is recomputed from src/native and binding.gyp under the package root, once per
 * process. An addon built before native sources changed would otherwise load and silently ignore
 * new arguments, or fail on a missing export and fall back to the pure-TypeScript backend.
 * Without the sources (an install that ships only the build), there is nothing to compare: no check.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface SourceHashScript {
  nativeSourceHash(root: string): string | null;
  stampPathFor(addonPath: string): string;
}

const hashes = new Map<string, { script: SourceHashScript; hash: string | null } | null>();

/** The hash of root's native sources and the script that computes it; null when either is absent. */
function sourcesOf(root: string): { script: SourceHashScript; hash: string | null } | null {
  if (hashes.has(root)) return hashes.get(root)!;
  const scriptPath = join(root, 'scripts', 'native-source-hash.cjs');
  let found: { script: SourceHashScript; hash: string | null } | null = null;
  if (existsSync(scriptPath)) {
    const script = createRequire(import.meta.url)(scriptPath) as SourceHashScript;
    found = { script, hash: script.nativeSourceHash(root) };
  }
  hashes.set(root, found);
  return found;
}

/**
 * Why the addon at addonPath must not be loaded (its stamp is missing or names other sources than
 * root's), or null when it matches or root ships no sources to compare with.
 */
export function staleAddonReason(addonPath: string, root: string): string | null {
  const sources = sourcesOf(root);
  if (sources === null || sources.hash === null) return null;
  const stampPath = sources.script.stampPathFor(addonPath);
  const fix = 'run `node scripts/build-native.mjs`, or set SMOLCLUSTER_BACKEND=js to use the pure-TypeScript backend';
  if (!existsSync(stampPath)) {
    return `stale native addon: ${addonPath} has no source stamp (${stampPath} is missing), so it may predate `
      + `the native sources in ${root} (hash ${sources.hash.slice(0, 16)}); ${fix}`;
  }
  const built = readFileSync(stampPath, 'utf8').trim();
  if (built === sources.hash) return null;
  return `stale native addon: ${addonPath} was built from native sources with hash ${built.slice(0, 16)}, `
    + `but the sources in ${root} hash to ${sources.hash.slice(0, 16)}; ${fix}`;
}
