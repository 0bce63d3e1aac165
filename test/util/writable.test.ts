import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { experimentPaths } from '../../src/train/run/experiment.js';
import { ConfigError } from '../../src/util/errors.js';
import { ensureWritable, ensureWritableFolder } from '../../src/util/writable.js';
import { writeJson } from '../../src/validate/files.js';
import { tempDir } from '../helpers/cluster.js';

const dir = tempDir('writable');
after(() => rmSync(dir, { recursive: true, force: true }));

test('ensureWritable creates missing parent folders and refuses a folder or an unwritable place, naming the flag', () => {
  const deep = join(dir, 'a', 'b', 'result.json');
  ensureWritable(deep, '--output');
  assert.ok(existsSync(join(dir, 'a', 'b')), 'parents created');
  assert.ok(!existsSync(deep), 'the file itself is not created');
  mkdirSync(join(dir, 'folder'));
  assert.throws(() => ensureWritable(join(dir, 'folder'), '--save'), (e: unknown) => e instanceof ConfigError && /--save/.test(e.message) && /it is a folder/.test(e.message));
  if (process.getuid?.() !== 0) {
    mkdirSync(join(dir, 'ro'));
    chmodSync(join(dir, 'ro'), 0o500);
    assert.throws(() => ensureWritable(join(dir, 'ro', 'x.json'), '--output'), /is not writable/);
  }
  writeJson(join(dir, 'plain.json'), {});
  assert.throws(() => ensureWritable(join(dir, 'plain.json', 'sub', 'x.json'), '--output'), (e: unknown) => e instanceof ConfigError && /cannot create its folder/.test(e.message));
});

test('ensureWritableFolder creates the folder and refuses a file on its path or in its place, naming the flag', () => {
  ensureWritableFolder(join(dir, 'ckpt', 'deep'), '--checkpoint-dir');
  assert.ok(existsSync(join(dir, 'ckpt', 'deep')));
  writeJson(join(dir, 'afile'), {});
  for (const bad of [join(dir, 'afile'), join(dir, 'afile', 'sub')]) {
    assert.throws(() => ensureWritableFolder(bad, '--checkpoint-dir'), (e: unknown) => e instanceof ConfigError && e.message.includes('--checkpoint-dir') && e.message.includes(bad) && /is a file/.test(e.message));
  }
  if (process.getuid?.() !== 0) {
    mkdirSync(join(dir, 'ro-ckpt'));
    chmodSync(join(dir, 'ro-ckpt'), 0o500);
    assert.throws(() => ensureWritableFolder(join(dir, 'ro-ckpt'), '--checkpoint-dir'), /is not writable/);
  }
});

test('run names cannot escape the experiments folder', () => {
  for (const name of ['..', '.', '../x', 'a/b', '...']) {
    assert.throws(() => experimentPaths(dir, name), (e: unknown) => e instanceof ConfigError && /--name/.test(e.message), name);
  }
  assert.equal(experimentPaths(dir, 'run-1.2').dir, join(dir, 'run-1.2'));
});

test('reports are written whole (temporary file renamed over the target) and their folders created', () => {
  const file = join(dir, 'reports', 'deep', 'report.json');
  writeJson(file, { a: 1 });
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { a: 1 });
  assert.deepEqual(readdirSync(join(dir, 'reports', 'deep')), ['report.json'], 'no temporary file left');
});
