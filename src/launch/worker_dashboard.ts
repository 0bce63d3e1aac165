import type { OptionValues, WORKER_DASHBOARD_OPTIONS } from '../config/options/index.js';

/** `worker --dashboard` / `server --dashboard`: rank 0 serves the whole cluster's dashboard. */
export type WorkerDashboardFlags = OptionValues<typeof WORKER_DASHBOARD_OPTIONS>;

/**
 * Rank 0's dashboard, from its run folder, which the metric stream (src/metrics/remote) fills with
 * every rank's lines. Served from a worker thread: rank 0 trains too.
 */
export async function openWorkerDashboard(flags: WorkerDashboardFlags, rank: number, dir: string, name: string, resuming = false): Promise<{ url: string; close(): Promise<void> } | null> {
  if (!flags.dashboard) return null;
  if (rank !== 0) {
    process.stderr.write(`smolcluster: rank ${rank}: --dashboard is served by rank 0 (every rank's metrics stream there)\n`);
    return null;
  }
  const { openLiveDashboard } = await import('../dashboard/live.js');
  // No flag defaults (the launcher's round trip of a worker's flags stays exact): applied here.
  return openLiveDashboard({ dir, name, port: flags.dashboardPort ?? 3000, host: flags.dashboardHost ?? '127.0.0.1', thread: true, resuming });
}
