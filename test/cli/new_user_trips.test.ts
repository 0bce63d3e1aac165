/**
 * What new users tripped over with `train` (issue 23 §1): runs that shared or reused a folder, a
 * Ctrl-C reported as a killed worker, and a root cause printed once per rank.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'smolcluster-trips-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tiny = ['--max-steps', '2', '--eval-every', '0', '--threads', '1'];

describe('train: run folders', () => {
  it('two runs started together get a folder each', async () => {
    const root = join(dir, 'together');
    const runs = await Promise.all([runCli(['train', ...tiny, '--experiments-dir', root]), runCli(['train', ...tiny, '--experiments-dir', root])]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.equal(readdirSync(root).length, 2);
  });

  it('an existing --name is refused unless --overwrite (or --resume) says otherwise', async () => {
    const root = join(dir, 'named');
    assert.equal((await runCli(['train', ...tiny, '--experiments-dir', root, '--name', 'x'])).code, 0);
    const again = await runCli(['train', ...tiny, '--experiments-dir', root, '--name', 'x']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a run.*--overwrite/);
    const replaced = await runCli(['train', ...tiny, '--experiments-dir', root, '--name', 'x', '--overwrite']);
    assert.equal(replaced.code, 0, replaced.stderr);
  });
});

describe('train --workers 2: how a run ends', () => {
  it('a corrupt --init is found before any worker starts, and said once, last', async () => {
    const init = join(dir, 'corrupt.safetensors');
    writeFileSync(init, 'not a safetensors file at all');
    const r = await runCli(['train', '--workers', '2', ...tiny, '--init', init, '--experiments-dir', join(dir, 'init')]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.filter((l) => l.includes('corrupt.safetensors')).length, 1, r.stderr);
    assert.match(lines.at(-1)!, /corrupt\.safetensors/);
    assert.doesNotMatch(r.stderr, /rank|joined/);
  });

  it('Ctrl-C says the user interrupted the run, not that a rank was killed', async () => {
    const child = spawn(process.execPath, [CLI, 'train', '--workers', '2', '--epochs', '5', '--threads', '1', '--experiments-dir', join(dir, 'sigint')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (stderr.includes('(2/2)') && child.exitCode === null) setTimeout(() => child.kill('SIGINT'), 300);
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr.trim().split('\n').at(-1)!, /interrupted \(SIGINT, Ctrl-C\): stopped the run's 2 worker processes/);
    assert.doesNotMatch(stderr, /was killed by|stopped after it/);
  });
});
