import { Command, Option } from 'commander';
import { LOOPBACK, listenWarning } from '../launch/listen.js';
import { Coordinator, COORDINATOR_DEFAULTS } from '../cluster/coordinator.js';
import { parsePolicy, POLICY_NAMES, type PolicyName } from '../cluster/policies/index.js';
import { backend } from '../tensor/dispatch.js';
import { clusterToken, either, untilSignal, parsePort } from './cluster_flags.js';
import { startClusterDashboard } from './cluster_dashboard.js';
import { nonNegativeInt, positiveInt } from './options.js';
import { expectedNodesLine, noNodeLine, nodesFileFor } from './coordinator_nodes.js';

interface CoordinatorFlags {
  port?: number;
  policy?: string;
  nodes?: string;
  host: string;
  out: string;
  seed: number;
  deadAfterMs: number;
  retryLimit: number;
  retryBaseMs: number;
  retryCapMs: number;
  waitForNodesMs: number;
  taskTimeoutMs: number;
  slots: number;
  dashboard?: boolean;
  dashboardPort: number;
}

/**
 * `smolcluster coordinator --port P --policy random|round-robin|least-loaded [--nodes compute_nodes.txt]`,
 * or the original's `coordinator 9095 2` (1 = random, 2 = least-loaded, 3 = round-robin).
 */
export function coordinatorCommand(): Command {
  const d = COORDINATOR_DEFAULTS;
  return new Command('coordinator')
    .description('the coordinator of cluster jobs: queues jobs from clients, schedules their tasks on compute nodes, averages each round')
    .argument('[port]', "the original's positional port")
    .argument('[policy]', "the original's positional policy: 1 = random, 2 = least-loaded, 3 = round-robin")
    .option('--port <n>', 'port to listen on (0: any free port)', (s) => parsePort(s))
    .addOption(new Option('--policy <name>', 'scheduling policy (or 1, 2, 3)').choices([...POLICY_NAMES, '1', '2', '3']))
    .option('--nodes <file>', 'compute_nodes.txt: "host,port" per line; dialed, and re-read while running (default: compute_nodes.txt in the working folder, if there is one)')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1; 0.0.0.0 for nodes and clients on other machines, with a warning)', LOOPBACK)
    .option('--out <dir>', 'folder for events.jsonl and jobs/job-<id>/result.json', 'experiments/coordinator')
    .option('--seed <n>', 'seed of the random policy', nonNegativeInt, 0)
    .option('--dead-after-ms <ms>', 'a node silent this long is dead', positiveInt, d.deadAfterMs)
    .option('--retry-limit <n>', 'attempts per task before the job fails', positiveInt, d.retry.maxAttempts)
    .option('--retry-base-ms <ms>', 'first retry delay (doubles per retry)', nonNegativeInt, d.retry.baseMs)
    .option('--retry-cap-ms <ms>', 'longest retry delay', nonNegativeInt, d.retry.capMs)
    .option('--wait-for-nodes-ms <ms>', 'fail a job when no node is live this long', positiveInt, d.noNodeDeadlineMs)
    .option('--task-timeout-ms <ms>', 'give a task to another node when unanswered this long', positiveInt, d.taskTimeoutMs)
    .option('--slots <n>', 'tasks one node may hold at once', positiveInt, d.slots)
    .option('--dashboard', 'serve the dashboard (rounds, node states) while running')
    .option('--dashboard-port <n>', 'dashboard port (0: any free port)', nonNegativeInt, 3000)
    .action(async (portArg: string | undefined, policyArg: string | undefined, f: CoordinatorFlags) => {
      const port = either(f.port, portArg, '--port', parsePort);
      const policy: PolicyName = parsePolicy(either(f.policy, policyArg, '--policy', (s) => s, 'least-loaded'));
      backend().setThreads(1);
      const nodes = nodesFileFor(f.nodes);
      const coordinator = await Coordinator.start({
        ...d,
        host: f.host,
        port,
        token: clusterToken(),
        policy,
        seed: f.seed,
        nodesFile: nodes.file,
        outDir: f.out,
        deadAfterMs: f.deadAfterMs,
        retry: { baseMs: f.retryBaseMs, capMs: f.retryCapMs, maxAttempts: f.retryLimit },
        noNodeDeadlineMs: f.waitForNodesMs,
        taskTimeoutMs: f.taskTimeoutMs,
        slots: f.slots,
        onEvent: printEvent,
      });
      process.stderr.write(`smolcluster: coordinator on ${f.host}:${coordinator.port} (policy ${policy}${nodes.file ? `, nodes from ${nodes.file}` : ''}); events in ${f.out}/events.jsonl\n`);
      process.stderr.write(`smolcluster: ${expectedNodesLine(nodes.file, nodes.found, coordinator.port)}\n`);
      const started = Date.now();
      // While no node is live, say why every 5 s (a job submitted meanwhile fails after --wait-for-nodes-ms).
      const whyNone = setInterval(() => {
        if (coordinator.liveNodes === 0) process.stderr.write(`smolcluster: ${noNodeLine(nodes.file, coordinator.port, Date.now() - started)}\n`);
      }, 5000);
      whyNone.unref();
      const exposed = listenWarning('coordinator', f.host, coordinator.port);
      if (exposed) process.stderr.write(`smolcluster: ${exposed}\n`);
      const dashboard = f.dashboard ? await startClusterDashboard(f.out, f.dashboardPort) : null;
      await untilSignal();
      clearInterval(whyNone);
      await dashboard?.close();
      await coordinator.close();
    });
}

const PRINTED = new Set(['node_joined', 'node_device', 'node_dead', 'job_queued', 'job_started', 'round', 'job_done', 'job_failed', 'nodes_file_error', 'peer_refused']);

function printEvent(kind: string, fields: Record<string, unknown>): void {
  if (!PRINTED.has(kind)) return;
  const text = Object.entries(fields)
    .filter(([k]) => k !== 'nodes' && k !== 'devices')
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v)}`)
    .join(' ');
  process.stderr.write(`[coordinator] ${kind} ${text}\n`);
}
