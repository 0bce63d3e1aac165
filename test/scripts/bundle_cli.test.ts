/**
 * scripts/bundle-cli.mjs: the build leaves a bundle of the CLI that main.js runs (current: newer
 * than tsc's last compile, so every CLI test runs it), and the paths its modules resolve from their
 * own import.meta.url are the unbundled ones: package.json (--version) from any folder, the native
 * addon (info), the CLI a local cluster spawns (train --workers 2).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUNDLE = join(ROOT, 'dist/src/cli/bundle');
const esbuildMissing = !existsSync(join(ROOT, 'node_modules/esbuild'));
const SKIP = esbuildMissing && process.env.CI !== 'true' ? 'esbuild is not installed (npm install)' : false;

const elsewhere = mkdtempSync(join(tmpdir(), 'smolcluster-bundle-'));
after(() => rmSync(elsewhere, { recursive: true, force: true }));

describe('the bundled CLI', { skip: SKIP, timeout: 120_000 }, () => {
  it('is built, with a chunk per command, and is newer than the last compile', () => {
    const entry = join(BUNDLE, 'program.js');
    assert.ok(existsSync(entry), `${entry} was not built (npm run build)`);
    const chunks = readdirSync(BUNDLE);
    for (const command of ['train', 'worker', 'serve', 'generate']) assert.ok(chunks.some((f) => f.startsWith(`${command}-`)), `no chunk for ${command}: ${chunks.join(', ')}`);
    const compiled = statSync(join(ROOT, 'dist/tsconfig.tsbuildinfo'), { throwIfNoEntry: false });
    if (compiled) assert.ok(statSync(entry).mtimeMs >= compiled.mtimeMs, 'the bundle is older than the last compile: main.js would run the modules');
  });

  it('resolves package.json, the native addon and the CLI it spawns from each module\'s own place', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const version = await runCli(['--version'], { cwd: elsewhere });
    assert.equal(version.stdout.trim(), pkg.version);
    const info = await runCli(['info', '--json'], { cwd: elsewhere });
    assert.equal(info.code, 0, info.stderr);
    const addon = (JSON.parse(info.stdout) as { addon?: { path: string } }).addon;
    assert.ok(addon && existsSync(addon.path), `the addon found from native.js's own place: ${info.stdout.slice(0, 600)}`);
    const run = await runCli(['train', '--workers', '2', '--model', 'mlp', '--dataset', 'synthetic-regression', '--max-steps', '2', '--threads', '1', '--experiments-dir', elsewhere, '--name', 'two'], { cwd: elsewhere, timeoutMs: 90_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /with 2 workers \(allreduce\): 2 steps/);
  });
});
