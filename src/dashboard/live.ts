import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { EVENTS_FILE } from '../metrics/events.js';
import { TRACE_FILE, TRACE_STAGING_FILE } from '../metrics/trace.js';
import { type Dashboard, startDashboard } from './server.js';
import { startDashboardThread } from './thread.js';
import { exposureWarning, wildcardUrls } from './exposure.js';

export interface LiveDashboardOptions {
  /** The run's experiment folder (it may not exist yet). */
  dir: string;
  name: string;
  port?: number;
  host?: string;
  /**
   * Serve from a worker thread: for a process that also trains (its steps hold the main thread).
   * The launcher, which only waits on its workers, serves from its own thread.
   */
  thread: boolean;
  /** The run resumes from a checkpoint (--resume): it keeps its metrics.jsonl, and so does the page. */
  resuming?: boolean;
}

/**
 * The dashboard of the run this process is about to start: the previous run's files under the
 * same name are removed first (but a resumed run's metrics.jsonl, which it continues) (the run resets them anyway, a moment later), so the page never
 * shows them; the URL goes to stderr.
 */
export async function openLiveDashboard(o: LiveDashboardOptions): Promise<Pick<Dashboard, 'url' | 'close'>> {
  for (const f of [...(o.resuming ? [] : ['metrics.jsonl']), EVENTS_FILE, 'result.json', TRACE_FILE, TRACE_STAGING_FILE]) rmSync(join(o.dir, f), { force: true });
  const opts = { runs: [{ dir: o.dir, name: o.name, live: true as const }], port: o.port ?? 3000, host: o.host ?? '127.0.0.1' };
  const dashboard = o.thread ? await startDashboardThread(opts) : await startDashboard(opts);
  process.stderr.write(`smolcluster: dashboard at ${dashboard.url}\n`);
  const warning = exposureWarning(opts.host, Number(new URL(dashboard.url).port));
  if (warning) process.stderr.write(`smolcluster: ${warning}\n`);
  for (const url of wildcardUrls(opts.host, Number(new URL(dashboard.url).port))) process.stderr.write(`smolcluster: dashboard reachable at ${url}\n`);
  return dashboard;
}

/**
 * The run is over: with a terminal (a person watching) the page keeps serving until Ctrl-C, and says
 * so; without one (scripts, tests, CI) it closes at once and says how to see the run again, so
 * nothing waits on a signal no one will send.
 */
export async function endLiveDashboard(
  dashboard: Pick<Dashboard, 'url' | 'close'>, dir: string, interactive = process.stdout.isTTY === true && process.stdin.isTTY === true,
): Promise<void> {
  if (!interactive) {
    await dashboard.close();
    process.stderr.write(`smolcluster: the run is over and its dashboard stopped; see it again with: smolcluster dashboard ${dir}\n`);
    return;
  }
  process.stderr.write(`smolcluster: the run is over; its dashboard keeps serving at ${dashboard.url} — press Ctrl-C to stop it\n`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  await dashboard.close();
}
