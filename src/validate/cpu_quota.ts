/**
 * A real slow node on one machine: a cgroup that limits a process's CPU time (Linux; root).
 * cgroup v1's cpu controller (`cpu.cfs_quota_us` / `cpu.cfs_period_us`) or v2's `cpu.max`. A
 * quota of q periods per period gives the processes inside at most q of one CPU, whatever else
 * runs: `fraction` 1/3 makes a one-thread worker at least 3× slower.
 *
 * `weight` sets the group's CPU weight (v1 `cpu.shares`, default 1024, v2 `cpu.weight`, default
 * 100) relative to the processes outside: a benchmark on a shared machine gives each of its
 * workers its own group with a high weight, so the quota — not the neighbours' builds — is what
 * slows the slowed worker.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupGroup, canCreateGroup } from './cgroup_group.js';

const V1 = '/sys/fs/cgroup/cpu';
const V2 = '/sys/fs/cgroup';
/**
 * A short period, so the quota acts like a slower clock: with 3 ms periods a 5 ms burst of work
 * at 1/3 takes ≈ 14 ms; with the default 100 ms (or 30 ms) a worker that idles between short steps
 * never exhausts its quota and runs at full speed. The kernel's smallest quota is 1 ms.
 */
const MIN_PERIOD_US = 3_000;
const MIN_QUOTA_US = 1_000;

export type CgroupVersion = 'v1' | 'v2';

/** Which cpu controller this machine offers us to write, or null (not Linux, not root, none mounted). */
export function cpuControllerAvailable(): CgroupVersion | null {
  try {
    if (existsSync(join(V1, 'cpu.cfs_quota_us'))) return canCreateGroup(V1) ? 'v1' : null;
    if (existsSync(join(V2, 'cgroup.controllers')) && readFileSync(join(V2, 'cgroup.controllers'), 'utf8').includes('cpu')) return canCreateGroup(V2) ? 'v2' : null;
  } catch {
    // unreadable: none
  }
  return null;
}

export class CpuQuota extends CgroupGroup {
  private constructor(dir: string, readonly version: CgroupVersion) {
    super(dir);
  }

  /** A new group `name` (unique per process); throws if no cpu controller is writable. */
  static create(name: string, opts: { weight?: number } = {}): CpuQuota {
    const version = cpuControllerAvailable();
    if (!version) throw new Error('no writable cgroup cpu controller (needs Linux and root)');
    const dir = join(version === 'v1' ? V1 : V2, `smolcluster-${name}-${process.pid}`);
    mkdirSync(dir);
    const q = new CpuQuota(dir, version);
    if (opts.weight !== undefined) {
      if (version === 'v1') q.write('cpu.shares', String(opts.weight));
      else q.write('cpu.weight', String(Math.max(1, Math.min(10_000, Math.round(opts.weight / 10.24)))));
    }
    return q;
  }

  /**
   * At most `fraction` of one CPU from now on (null or ≥ 1 period's worth per period: unlimited),
   * in periods of `periodUs` (default: the shortest that allows a 1 ms quota, at least 3 ms).
   */
  limit(fraction: number | null, periodUs?: number): void {
    const period = fraction === null ? MIN_PERIOD_US : Math.max(periodUs ?? MIN_PERIOD_US, Math.ceil(MIN_QUOTA_US / fraction));
    const quota = fraction === null ? -1 : Math.round(period * fraction);
    if (this.version === 'v1') {
      this.write('cpu.cfs_period_us', String(period));
      this.write('cpu.cfs_quota_us', String(quota));
    } else {
      this.write('cpu.max', `${quota < 0 ? 'max' : quota} ${period}`);
    }
  }
}
