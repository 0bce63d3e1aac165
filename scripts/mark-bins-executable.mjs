#!/usr/bin/env node
/**
 * Marks package.json's bin files executable after tsc wrote them (tsc writes 0644). npm sets the bit
 * on the bins of packages it installs, but not on the root package's own, so without this
 * `npx smolcluster` in a fresh clone fails with "Permission denied" (the README's quick start).
 */
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { bin = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of Object.values(bin)) {
  const path = join(root, file);
  if (!existsSync(path)) throw new Error(`package.json bin ${file} was not built`);
  chmodSync(path, 0o755);
}
