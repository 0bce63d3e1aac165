/**
 * dist/src/cli/main.js runs the CLI's bundle where it is current and program.js's modules where the
 * bundle is missing or older than tsc's last compile (tsconfig.tsbuildinfo). Run on a copy of
 * main.js in a temporary dist/ whose bundle and program only say which of them ran.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'smolcluster-main-'));
after(() => rmSync(root, { recursive: true, force: true }));
const cli = join(root, 'dist/src/cli');
mkdirSync(join(cli, 'bundle'), { recursive: true });
writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
copyFileSync(CLI, join(cli, 'main.js'));
writeFileSync(join(cli, 'program.js'), "console.log('modules');\n");
const bundle = join(cli, 'bundle/program.js');
const compiled = join(root, 'dist/tsconfig.tsbuildinfo');

function ran(): string {
  const r = spawnSync(process.execPath, [join(cli, 'main.js')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** Sets a file's modification time to `seconds` after the epoch. */
const at = (file: string, seconds: number): void => utimesSync(file, seconds, seconds);

describe('dist/src/cli/main.js', () => {
  it('runs the bundle when it is newer than the last compile, or there is no compile record (an installed package)', () => {
    writeFileSync(bundle, "console.log('bundle');\n");
    writeFileSync(compiled, '{}');
    at(compiled, 1_000_000);
    at(bundle, 1_000_010);
    assert.equal(ran(), 'bundle');
    rmSync(compiled);
    assert.equal(ran(), 'bundle');
  });

  it('runs the modules when tsc compiled after the bundle was built, or there is no bundle', () => {
    writeFileSync(bundle, "console.log('bundle');\n");
    writeFileSync(compiled, '{}');
    at(bundle, 1_000_000);
    at(compiled, 1_000_010);
    assert.equal(ran(), 'modules');
    rmSync(join(cli, 'bundle'), { recursive: true });
    assert.equal(ran(), 'modules');
    mkdirSync(join(cli, 'bundle'));
  });
});
