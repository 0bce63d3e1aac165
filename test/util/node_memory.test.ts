import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { nodeMemoryBytes } from '../../src/util/node_memory.js';

const V1 = '/sys/fs/cgroup/memory';
const MODULE = fileURLToPath(new URL('../../src/util/node_memory.js', import.meta.url));

test('without a cgroup limit: at most the host\'s free memory', () => {
  const bytes = nodeMemoryBytes();
  assert.ok(bytes > 0 && bytes <= freemem() * 1.5, `${bytes}`);
});

/** A group of its own with a memory limit (cgroup v1, root); null where none can be made. */
function memoryGroup(limit: number): string | null {
  if (!existsSync(join(V1, 'memory.limit_in_bytes'))) return null;
  const dir = join(V1, `smolcluster-pipeline-${process.pid}`);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limit));
    return dir;
  } catch {
    return null;
  }
}

test('a process in a memory-capped cgroup (v1) reports the cap less what the group uses', (t) => {
  const limit = 400 * 2 ** 20;
  const dir = memoryGroup(limit);
  if (!dir) return t.skip('no writable cgroup v1 memory controller (needs Linux and root)');
  try {
    // The shell joins the group, then becomes node: the process measures from inside.
    const script = `import(${JSON.stringify(MODULE)}).then((m) => console.log(m.nodeMemoryBytes()))`;
    const out = execFileSync('sh', ['-c', `echo $$ > ${join(dir, 'cgroup.procs')} && exec "${process.execPath}" -e '${script}'`], { encoding: 'utf8' });
    const bytes = Number(out.trim());
    assert.ok(bytes > 0 && bytes < limit, `reported ${bytes} under a ${limit}-byte cap`);
    // Node itself takes tens of MB of the group: the headroom is the cap less that.
    assert.ok(bytes > limit - 200 * 2 ** 20, `reported ${bytes}: more than 200 MB of the cap counted as used`);
  } finally {
    try {
      rmdirSync(dir);
    } catch {
      // still in use for a moment: left for the OS
    }
  }
});
