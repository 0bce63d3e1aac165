import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { MemoryCap, memoryControllerAvailable } from '../../src/validate/memory_cap.js';

/** A node process that touches `mb` MB, entering `cap`'s group before Node starts; its exit code and signal. */
function allocate(cap: MemoryCap, mb: number): Promise<[number | null, NodeJS.Signals | null]> {
  const script = `const a = []; for (let i = 0; i < ${mb}; i++) a.push(new Uint8Array(1 << 20).fill(1)); console.log(a.length);`;
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cap.dir, process.execPath, '-e', script], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve([code, signal])));
}

describe('cgroup v1 memory cap (src/validate/memory_cap.ts)', { skip: !memoryControllerAvailable() && 'needs root and a cgroup v1 memory controller' }, () => {
  it('a process that needs more than the cap is killed by the OOM killer, one within it is not; the peak is measured', async () => {
    const cap = MemoryCap.create('test', 160 * 2 ** 20);
    try {
      assert.deepEqual(await allocate(cap, 40), [0, null]);
      assert.ok(cap.peakBytes() > 40 * 2 ** 20 && cap.peakBytes() <= 160 * 2 ** 20, `peak ${cap.peakBytes()}`);
      assert.equal(cap.oomKills(), 0);
      const [code, signal] = await allocate(cap, 400);
      assert.equal(signal, 'SIGKILL', `exit ${code}`);
      assert.equal(cap.oomKills(), 1);
    } finally {
      cap.remove();
    }
  });
});
