import type { Command } from 'commander';
import { nonNegativeInt } from './options.js';

/** `worker --dashboard` / `server --dashboard`: rank 0 serves the whole cluster's dashboard. */
export interface WorkerDashboardFlags {
  dashboard?: boolean;
  dashboardPort?: number;
  dashboardHost?: string;
}

export function addWorkerDashboardFlags(cmd: Command): Command {
  return cmd
    .option('--dashboard', 'rank 0 serves a live dashboard of every rank, on any host (the URL is printed on stderr; other ranks ignore it)')
    .option('--dashboard-port <n>', 'dashboard port (0: any free port; default 3000)', nonNegativeInt)
    .option('--dashboard-host <host>', 'address the dashboard listens on (default 127.0.0.1; 0.0.0.0: every interface, without a login, see docs/EXPERIMENTS.md)');
}

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
