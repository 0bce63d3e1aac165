/**
 * A machine with less memory, on this one: a cgroup v1 memory controller group (Linux; root) whose
 * `memory.limit_in_bytes` caps what its processes may hold. A process that needs more is killed
 * by the kernel's OOM killer (SIGKILL), as it would be on a smaller machine without swap. The
 * group's `memory.max_usage_in_bytes` is the peak the kernel charged to it (RSS and page cache),
 * and `memory.oom_control`'s `oom_kill` counts the processes it killed.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupGroup, canCreateGroup } from './cgroup_group.js';

const V1 = '/sys/fs/cgroup/memory';

/** Whether a cgroup v1 memory controller is writable here (Linux, root, mounted). */
export function memoryControllerAvailable(): boolean {
  return existsSync(join(V1, 'memory.limit_in_bytes')) && canCreateGroup(V1);
}

export class MemoryCap extends CgroupGroup {
  private constructor(dir: string) {
    super(dir);
  }

  /** A new group `name` (unique per process) limited to `bytes`; throws if no memory controller is writable. */
  static create(name: string, bytes: number): MemoryCap {
    if (!memoryControllerAvailable()) throw new Error('no writable cgroup v1 memory controller (needs Linux and root)');
    const dir = join(V1, `smolcluster-${name}-${process.pid}`);
    mkdirSync(dir);
    const cap = new MemoryCap(dir);
    cap.write('memory.limit_in_bytes', String(Math.floor(bytes)));
    // No swap to fall back on: where the kernel accounts swap too, the same limit holds for both.
    if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) cap.write('memory.memsw.limit_in_bytes', String(Math.floor(bytes)));
    return cap;
  }

  /** The most memory the group's processes held at once (bytes, as the kernel charged it). */
  peakBytes(): number {
    return Number(readFileSync(join(this.dir, 'memory.max_usage_in_bytes'), 'utf8').trim());
  }

  /** Processes the OOM killer ended in this group (0 where the kernel does not count them). */
  oomKills(): number {
    const m = /oom_kill (\d+)/.exec(readFileSync(join(this.dir, 'memory.oom_control'), 'utf8'));
    return m ? Number(m[1]) : 0;
  }
}
