/**
 * One cgroup directory of ours (Linux; root): a group created under a controller's root, processes
 * moved into it, its control files written, and the group removed when they have ended. The
 * controllers' own knobs live in their files (cpu_quota.ts, memory_cap.ts).
 */
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Whether this process may create a group under `root` (a probe group made and removed at once). */
export function canCreateGroup(root: string): boolean {
  const dir = join(root, `smolcluster-probe-${process.pid}`);
  try {
    mkdirSync(dir);
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

export class CgroupGroup {
  protected constructor(readonly dir: string) {}

  /** Moves a process (all its threads) into the group. */
  add(pid: number): void {
    this.write('cgroup.procs', String(pid));
  }

  /** Removes the group; its processes must have ended (or moved) first. Never throws. */
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      // still busy or already gone: left for the OS
    }
  }

  protected write(file: string, value: string): void {
    writeFileSync(join(this.dir, file), value);
  }
}
