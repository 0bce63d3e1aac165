/**
 * Supervision of an elastic local run (`train --workers N --elastic`): a worker that fails does not
 * end the run — the others re-form without it — and the launcher starts it again while
 * `--max-restarts` allows (the restarted process joins at the next step boundary). The run is over
 * when every worker has exited; it succeeded when some worker finished and none failed on its own
 * (exited non-zero, e.g. below --min-workers). Workers still running a grace period after the first
 * one finished (a stopped process that was left behind) are killed.
 */
import type { ChildProcess } from 'node:child_process';
import type { LauncherEvents } from '../metrics/events.js';

/** Set on a worker the launcher restarted (how many restarts so far): it joins a running run. */
export const RESTARTS_ENV = 'SMOLCLUSTER_RESTARTS';

export interface ElasticSupervision {
  workers: number;
  maxRestarts: number;
  /** Starts rank's process; `restarts` is how many restarts happened so far (0: the first start). */
  spawn(rank: number, restarts: number): ChildProcess;
  events: LauncherEvents;
  /** How long workers may run on after the first finished (ms). */
  graceMs: number;
  /** Whether a failed rank may be restarted (default: every rank). */
  restartable?(rank: number): boolean;
}

export function superviseElastic(s: ElasticSupervision): Promise<number> {
  return new Promise((resolve) => {
    let restarts = 0;
    let live = 0;
    let finished = 0;
    const failures: string[] = [];
    let killer: NodeJS.Timeout | null = null;
    const children = new Map<number, ChildProcess>();
    const start = (rank: number): void => {
      const child = s.spawn(rank, restarts);
      children.set(rank, child);
      live++;
      if (restarts > 0) s.events.workerRestarted(rank, child.pid, restarts);
      else s.events.workerStarted(rank, child.pid);
      child.on('exit', (code, signal) => {
        live--;
        s.events.workerExited(rank, code, signal);
        if (code === 0) finished++;
        else if (signal === null) failures.push(`worker rank ${rank} exited with code ${code}`);
        if (code === 0 && !killer) {
          killer = setTimeout(() => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')), s.graceMs);
          killer.unref();
        }
        if (code !== 0 && finished === 0 && restarts < s.maxRestarts && (s.restartable?.(rank) ?? true)) {
          restarts++;
          start(rank);
          return;
        }
        if (live === 0) {
          if (killer) clearTimeout(killer);
          if (finished > 0 && failures.length === 0) return resolve(0);
          process.stderr.write(`smolcluster: error: run failed: ${failures.length ? failures.join('; ') : 'no worker finished'}\n`);
          resolve(1);
        }
      });
    };
    for (let rank = 0; rank < s.workers; rank++) start(rank);
  });
}
