import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { shmNative } from '../../../src/launch/shm_native.js';
import { pidNamespace } from '../../../src/comm/shm/namespace.js';
import { segmentName, sweepStaleSegments } from '../../../src/comm/shm/sweep.js';

const native = shmNative();
const skip = native || process.env.CI === 'true' ? false : 'the native addon has no shared memory here (not Linux, or not built)';

/** A pid that existed and has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.ok(r.pid > 0);
  return r.pid;
}

test('segment names carry the pid namespace and pid', () => {
  assert.equal(segmentName('ab12'), `/smolcluster-${pidNamespace()}-${process.pid}-ab12`);
  assert.match(pidNamespace(), /^\d+$/);
});

test('only segments of dead creators in our pid namespace are removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-sweep-'));
  try {
    const ns = pidNamespace();
    const dead = deadPid();
    const names = {
      dead: `smolcluster-${ns}-${dead}-0a1b`,
      live: `smolcluster-${ns}-${process.pid}-0a1b`,
      otherNamespace: `smolcluster-${Number(ns) + 1}-${dead}-0a1b`,
      olderForm: `smolcluster-${dead}-0a1b2c`,
      unrelated: 'pulse-shm-123',
    };
    for (const n of Object.values(names)) writeFileSync(join(dir, n), '');
    const unlinked: string[] = [];
    assert.deepEqual(sweepStaleSegments((n) => unlinked.push(n), dir), [`/${names.dead}`]);
    assert.deepEqual(unlinked, [`/${names.dead}`]);
    assert.deepEqual(sweepStaleSegments(() => {}, join(dir, 'missing')), [], 'no directory: nothing to sweep');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a real segment left by a dead process is unlinked from /dev/shm', { skip }, () => {
  const name = `/smolcluster-${pidNamespace()}-${deadPid()}-5eed`;
  native!.shmCreate(name, 4096);
  assert.ok(existsSync(`/dev/shm${name}`));
  assert.ok(sweepStaleSegments((n) => native!.shmUnlink(n)).includes(name));
  assert.ok(!existsSync(`/dev/shm${name}`));
});
