/**
 * What the OS tells a process about the CPU it gets (Linux): the training thread's time on a CPU
 * and time runnable but not running (/proc/self/schedstat), and the CPU quota of its cgroup
 * (v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, v2 `cpu.max`). capacity.ts turns them into the
 * capacity a rank plans with; elsewhere (no /proc) both are unknown and balancing uses wall times.
 *
 * Why these and not process.cpuUsage: a rank's step time is its CPU work ÷ the share of a CPU it
 * gets while it wants one. schedstat's second field is exactly the time it wanted one and did not
 * get it — a neighbour's program on its core, or its cgroup throttled by a quota (measured: a busy
 * loop under a third of a CPU in 100 ms periods ran 671 ms and waited 1,328 ms in 2 s). A quota's
 * ceiling is read rather than measured: a rank given little work never reaches it, and its steps
 * look full speed until a larger share makes it stall for the rest of each period.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** A thread's cumulative times (ms). */
export interface CpuTimes {
  /** On a CPU. */
  runMs: number;
  /** Runnable but waiting: for a core another process holds, or throttled by a quota. */
  queuedMs: number;
}

export interface CpuSource {
  /** A monotonic clock (ms). */
  nowMs(): number;
  /** The training thread's cumulative times now, or null where the OS does not say. */
  times(): CpuTimes | null;
  /** CPUs this process may use by its cgroup quota (the tightest along its cgroup path), or null: no quota known. */
  quotaCpus(): number | null;
  /** CPU time this process has used, all its threads (ms, cumulative). */
  processCpuMs(): number;
}

/** The running process's source (the main thread: with --threads 1 it does the training). */
export function procCpuSource(): CpuSource {
  return { nowMs: () => performance.now(), times: readSchedstat, quotaCpus: readQuotaCpus, processCpuMs };
}

function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function readSchedstat(): CpuTimes | null {
  const text = readIfExists('/proc/self/schedstat');
  if (text === null) return null;
  const [run, queued] = text.trim().split(/\s+/).map(Number);
  return Number.isFinite(run) && Number.isFinite(queued) ? { runMs: run / 1e6, queuedMs: queued / 1e6 } : null;
}

const V1_MOUNTS = ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct'];
const V2_MOUNT = '/sys/fs/cgroup';

/** The smallest quota ÷ period over this process's cgroup and its ancestors, or null. Read anew each time: a process may be moved, or its quota changed. */
function readQuotaCpus(): number | null {
  const lines = readIfExists('/proc/self/cgroup')?.split('\n') ?? [];
  let tightest: number | null = null;
  const take = (q: number | null): void => {
    if (q !== null && (tightest === null || q < tightest)) tightest = q;
  };
  for (const line of lines) {
    const [, controllers, path] = line.split(':');
    if (path === undefined) continue;
    if (controllers.split(',').includes('cpu')) {
      const mount = V1_MOUNTS.find((m) => existsSync(join(m, 'cpu.cfs_quota_us')));
      if (mount) for (const dir of ancestors(mount, path)) take(v1Quota(dir));
    } else if (controllers === '' && existsSync(join(V2_MOUNT, 'cgroup.controllers'))) {
      for (const dir of ancestors(V2_MOUNT, path)) take(v2Quota(dir));
    }
  }
  return tightest;
}

/** `path`'s directory under `mount` and each parent up to the mount (those that exist: a container sees its own group as the mount). */
function ancestors(mount: string, path: string): string[] {
  const dirs: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    const dir = join(mount, p);
    if (existsSync(dir)) dirs.push(dir);
    if (p === '/' || p === '.' || p === '') break;
  }
  return dirs;
}

function v1Quota(dir: string): number | null {
  const quota = Number(readIfExists(join(dir, 'cpu.cfs_quota_us')));
  const period = Number(readIfExists(join(dir, 'cpu.cfs_period_us')));
  return quota > 0 && period > 0 ? quota / period : null;
}

function v2Quota(dir: string): number | null {
  const [quota, period] = (readIfExists(join(dir, 'cpu.max')) ?? 'max').trim().split(/\s+/);
  return quota !== 'max' && Number(quota) > 0 && Number(period) > 0 ? Number(quota) / Number(period) : null;
}

function readIfExists(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
