/**
 * Options of where a run's records also go and who watches it: the sinks (passed on to workers),
 * the dashboards (served by the launcher or by rank 0), and the configuration files themselves.
 */
import { nonNegativeInt } from './parsers.js';
import { toggle, valued } from './spec.js';

/** train, worker, server: the launcher passes them on to its workers. */
export const SINK_OPTIONS = {
  trace: toggle({ help: 'write a timeline of every rank\'s compute, communication and wait (trace.json, Chrome trace format)', forward: true }),
  wandb: toggle({ help: 'also log metrics to Weights & Biases (needs the @wandb/sdk package and WANDB_API_KEY or wandb login\'s ~/.netrc)', forward: true }),
  wandbProject: valued<string>({ arg: '<name>', help: 'W&B project (default smolcluster)', forward: true }),
} as const;

/** `train --dashboard`: served by the training process, or by the launcher (never by its workers). */
export const DASHBOARD_OPTIONS = {
  dashboard: toggle({ help: 'serve a live dashboard of the run (the URL is printed on stderr)', forward: false }),
  port: valued({ arg: '<n>', help: 'dashboard port (0: any free port)', parse: nonNegativeInt, default: 3000, forward: false }),
  dashboardHost: valued({ arg: '<host>', help: 'address the dashboard listens on', default: '127.0.0.1', forward: false }),
} as const;

/**
 * `worker --dashboard` / `server --dashboard`: rank 0 serves the whole cluster's dashboard. No
 * defaults here (a worker's flags round-trip exactly through the launcher): they are applied where
 * the dashboard opens.
 */
export const WORKER_DASHBOARD_OPTIONS = {
  dashboard: toggle({ help: 'rank 0 serves a live dashboard of every rank, on any host (the URL is printed on stderr; other ranks ignore it)', forward: false }),
  dashboardPort: valued({ arg: '<n>', help: 'dashboard port (0: any free port; default 3000)', parse: nonNegativeInt, forward: false }),
  dashboardHost: valued<string>({ arg: '<host>', help: 'address the dashboard listens on (default 127.0.0.1; 0.0.0.0: every interface, without a login, see docs/EXPERIMENTS.md)', forward: false }),
} as const;

/** SmolCluster's two files: their values are applied under the flags typed (cli/config.ts), so workers get the values, not the files. */
export const CONFIG_FILE_OPTIONS = {
  cluster: valued<string>({ arg: '<file>', help: 'SmolCluster cluster_config.yaml (flags override its values; docs/CONFIG.md)', forward: false }),
  nn: valued<string>({ arg: '<file>', help: 'SmolCluster nn_config.yaml (flags override its values)', forward: false }),
} as const;
