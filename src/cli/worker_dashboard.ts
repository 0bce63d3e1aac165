import type { Command } from 'commander';
import { WORKER_DASHBOARD_OPTIONS } from '../config/options/index.js';
import { addOptions } from './option_table.js';

export type { WorkerDashboardFlags } from '../launch/worker_dashboard.js';

/** `worker --dashboard` / `server --dashboard`: rank 0 serves the whole cluster's dashboard (launch/worker_dashboard.ts). */
export function addWorkerDashboardFlags(cmd: Command): Command {
  return addOptions(cmd, WORKER_DASHBOARD_OPTIONS);
}
