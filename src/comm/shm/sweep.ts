/**
 * Segments left in /dev/shm by processes that crashed during the shared-memory exchange
 * (negotiate.ts unlinks its segment as soon as the exchange is over, so only that window leaks). A
 * segment's name carries its creator's pid namespace and pid (/smolcluster-<pidns>-<pid>-<random>):
 * one whose creator no longer exists in our pid namespace is removed before we create our own. A
 * name from another pid namespace, or in an older form without one, is left alone: its creator may
 * be alive where we cannot see it.
 */
import { readdirSync } from 'node:fs';
import { commLog } from '../log.js';
import { pidNamespace } from './namespace.js';

const SHM_DIR = '/dev/shm';
const NAME = /^smolcluster-(\d+)-(\d+)-[0-9a-f]+$/;

/** Our segment name: its creator's pid namespace and pid, then `random`. */
export function segmentName(random: string): string {
  return `/smolcluster-${pidNamespace()}-${process.pid}-${random}`;
}

/** Removes (with `unlink`, shm_unlink's name) every segment of a dead creator in our pid namespace; returns their names. */
export function sweepStaleSegments(unlink: (name: string) => unknown, dir = SHM_DIR): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return []; // no /dev/shm here: nothing to sweep
  }
  const ns = pidNamespace();
  const removed: string[] = [];
  for (const entry of entries) {
    const m = NAME.exec(entry);
    if (!m || m[1] !== ns || alive(Number(m[2]))) continue;
    try {
      unlink(`/${entry}`);
      removed.push(`/${entry}`);
    } catch {
      // another process swept it first, or it is not ours to remove
    }
  }
  if (removed.length > 0) commLog('warn', `removed ${removed.length} shared-memory segment(s) left by crashed processes: ${removed.join(', ')}`);
  return removed;
}

/** Whether `pid` exists (EPERM: it does, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
