/**
 * The memory a process may use for its stage: its cgroup's limit (v1 memory.limit_in_bytes or v2
 * memory.max, as a memory-capped node or container sets), else the host's free memory at start.
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

/** Far above any machine: cgroup v1's "no limit" is 2^63 rounded to a page. */
const UNLIMITED = 2 ** 60;

export function nodeMemoryBytes(): number {
  const limit = cgroupLimit();
  return limit !== null && limit < UNLIMITED ? limit : freemem();
}

function cgroupLimit(): number | null {
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers === undefined || path === undefined) continue;
      if (controllers.split(',').includes('memory')) return readNumber(`/sys/fs/cgroup/memory${path}/memory.limit_in_bytes`);
      if (controllers === '') {
        const v2 = readNumber(`/sys/fs/cgroup${path}/memory.max`);
        if (v2 !== null) return v2;
      }
    }
  } catch {
    // not Linux, or no cgroup file: no limit known
  }
  return null;
}

function readNumber(file: string): number | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    const n = Number(text);
    return text === 'max' || !Number.isFinite(n) ? null : n;
  } catch {
    return null;
  }
}
