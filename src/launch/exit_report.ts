/**
 * What the local launcher says when workers fail: one line naming the worker that caused it, the
 * ones that stopped after it, and apart from those any the launcher had to kill after the grace
 * period (a hung worker: usually the cause, though it exits last).
 */

/** How one worker process ended. */
export interface WorkerExit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Still running at the end of the grace period, so the launcher killed it. */
  killedByLauncher?: boolean;
}

/**
 * The failure line, or null when every worker succeeded. The cause is the first worker killed by a
 * signal the launcher did not send (the OOM killer, `kill -9`, a crash): its peers only ever exit
 * with a code after it, yet one that noticed the lost peer may be reaped first. Otherwise the
 * first worker that failed.
 */
export function describeFailure(exits: readonly WorkerExit[]): string | null {
  const failed = exits.filter((e) => e.code !== 0);
  if (failed.length === 0) return null;
  const cause = failed.find((e) => e.signal !== null && !e.killedByLauncher) ?? failed[0];
  const how = cause.signal ? `was killed by ${cause.signal}` : `exited with code ${cause.code}`;
  const rest = failed.filter((e) => e !== cause);
  const ranks = (es: readonly WorkerExit[]): string => `rank${es.length > 1 ? 's' : ''} ${es.map((e) => e.rank).join(', ')}`;
  const stopped = rest.filter((e) => !e.killedByLauncher);
  const hung = rest.filter((e) => e.killedByLauncher);
  return (
    `worker rank ${cause.rank} ${how}` +
    `${stopped.length ? `; ${ranks(stopped)} stopped after it` : ''}` +
    `${hung.length ? `; ${ranks(hung)} did not stop and ${hung.length > 1 ? 'were' : 'was'} killed` : ''}`
  );
}
