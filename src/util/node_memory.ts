/**
 * The memory a process may still take: what its cgroup allows beyond what the group already uses
 * (v1 memory.limit_in_bytes − memory.usage_in_bytes, v2 memory.max − memory.current: a
 * memory-capped node or container), bounded by the host's memory. nodeMemoryBytes (a pipeline
 * stage's share) bounds it by the free memory; availableMemory (whether a model fits before it is
 * loaded) by MemAvailable, which counts the page cache the kernel gives back.
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

/** Far above any machine: cgroup v1's "no limit" is 2^63 rounded to a page. */
const UNLIMITED = 2 ** 60;

export function nodeMemoryBytes(): number {
  const group = cgroupHeadroom();
  return group === null ? freemem() : Math.min(group, freemem());
}

/** Bytes this process can take now: MemAvailable (Linux; else the free memory), within its cgroup's headroom. */
export function availableMemory(): number {
  const group = cgroupHeadroom();
  const host = memAvailable() ?? freemem();
  return group === null ? host : Math.min(group, host);
}

function memAvailable(): number | null {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The cgroup's limit less its usage, or null when no limit is set or readable. */
function cgroupHeadroom(): number | null {
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers === undefined || path === undefined) continue;
      if (controllers.split(',').includes('memory')) {
        return headroom(readNumber(`/sys/fs/cgroup/memory${path}/memory.limit_in_bytes`), readNumber(`/sys/fs/cgroup/memory${path}/memory.usage_in_bytes`));
      }
      if (controllers === '') {
        const v2 = headroom(readNumber(`/sys/fs/cgroup${path}/memory.max`), readNumber(`/sys/fs/cgroup${path}/memory.current`));
        if (v2 !== null) return v2;
      }
    }
  } catch {
    // not Linux, or no cgroup file: no limit known
  }
  return null;
}

function headroom(limit: number | null, usage: number | null): number | null {
  if (limit === null || limit >= UNLIMITED) return null;
  return Math.max(0, limit - (usage ?? 0));
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
