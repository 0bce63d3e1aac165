/** scripts/benchrun.sh: a benchmark runs holding the bench lock, at the top CPU weight where it can. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { cpuControllerAvailable } from '../../src/validate/cpu_quota.js';

const SCRIPT = fileURLToPath(new URL('../../../scripts/benchrun.sh', import.meta.url));

test('the command runs with the bench lock held: a second taker of the lock is refused meanwhile', () => {
  const r = spawnSync(SCRIPT, ['sh', '-c', 'flock -n /tmp/smolcluster-bench.lock true && echo free || echo held'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'held');
});

test('where a cgroup v1 cpu controller is writable, the command runs in the high-weight group', { skip: cpuControllerAvailable() !== 'v1' && 'no writable cgroup v1 cpu controller' }, () => {
  const r = spawnSync(SCRIPT, ['cat', '/proc/self/cgroup'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /:cpu(,cpuacct)?:\/smolcluster-bench$/m);
  const shares = spawnSync('cat', ['/sys/fs/cgroup/cpu/smolcluster-bench/cpu.shares'], { encoding: 'utf8' });
  assert.equal(shares.stdout.trim(), '262144');
});

test('without a command it says how to call it', () => {
  const r = spawnSync(SCRIPT, [], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: scripts\/benchrun.sh COMMAND/);
});
