import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { DEVICE_CHOICES, type DeviceChoice } from '../config/options/choices.js';
import { submitJob } from '../cluster/client.js';
import { Coordinator, COORDINATOR_DEFAULTS } from '../cluster/coordinator.js';
import { POLICY_NAMES, type PolicyName } from '../cluster/policies/index.js';
import { generateToken, TOKEN_ENV } from '../comm/token.js';
import { backend } from '../tensor/dispatch.js';
import { SmolError, TimeoutError } from '../util/errors.js';
import { parseProbability } from './cluster_flags.js';
import { startClusterDashboard } from './cluster_dashboard.js';
import { addJobFlags, jobFrom, printUpdate, writeResult, type JobFlags } from './submit.js';
import { nonNegativeInt, positiveInt } from './options.js';

interface FederatedFlags extends JobFlags {
  nodes: number;
  policy: PolicyName;
  loadProbability: number;
  busyDelayMs: number;
  out: string;
  dashboard?: boolean;
  dashboardPort: number;
  device: DeviceChoice;
}

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * `smolcluster federated --nodes N --rounds R --epochs E --hidden H --lr ETA`: the whole system on
 * this machine — a coordinator in this process, N compute-node processes that register with it, and
 * the job submitted through the same client as `submit`.
 */
export function federatedCommand(): Command {
  const cmd = new Command('federated').description('run a job of rounds on this machine: a coordinator, N compute-node processes and the client, in one command');
  return addJobFlags(cmd)
    .option('--nodes <n>', 'compute-node processes', positiveInt, 4)
    .addOption(new Option('--policy <name>', 'scheduling policy').choices([...POLICY_NAMES]).default('least-loaded'))
    .option('--load-probability <p>', 'probability that a node is busy for a task', (s) => parseProbability(s), 0)
    .option('--busy-delay-ms <ms>', 'how long a busy node delays a task it does not reject', nonNegativeInt, 3000)
    .option('--out <dir>', "the coordinator's folder (events.jsonl, jobs/)", 'experiments/federated')
    .option('--dashboard', 'serve the dashboard (rounds, node states) while running')
    .option('--dashboard-port <n>', 'dashboard port (0: any free port)', nonNegativeInt, 3000)
    .addOption(new Option('--device <where>', "every local compute node's --device (cpu, gpu or auto): where it trains its tasks").choices([...DEVICE_CHOICES]).default('cpu'))
    .action(async (f: FederatedFlags) => runFederated(f));
}

async function runFederated(f: FederatedFlags): Promise<void> {
  const token = generateToken();
  backend().setThreads(1);
  const coordinator = await Coordinator.start({ ...COORDINATOR_DEFAULTS, host: '127.0.0.1', port: 0, token, policy: f.policy, seed: f.seed, outDir: f.out });
  // The node processes start first: the data loads and the dashboard starts while they boot.
  const nodes: LocalNode[] = [];
  let dashboard: Awaited<ReturnType<typeof startClusterDashboard>> | null = null;
  try {
    for (let i = 0; i < f.nodes; i++) nodes.push(startNode(coordinator.port, i, f, token));
    const spec = jobFrom(f);
    if (f.dashboard) dashboard = await startClusterDashboard(f.out, f.dashboardPort);
    await waitForNodes(coordinator, nodes, 30_000);
    const result = await submitJob({ host: '127.0.0.1', port: coordinator.port, token, spec, connectTimeoutMs: 10_000, timeoutMs: 3_600_000, onUpdate: printUpdate });
    writeResult(f.output, result);
  } catch (err) {
    // The nodes' own lines (quiet when all goes well) help explain a failure.
    for (const n of nodes) if (n.log.trim()) process.stderr.write(n.log.trim().split('\n').slice(-5).map((l) => `${l}\n`).join(''));
    throw err;
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await dashboard?.close();
    await coordinator.close();
  }
}

interface LocalNode {
  exit: { code: number | null; signal: string | null } | null;
  log: string;
  stop(): Promise<void>;
}

function startNode(port: number, i: number, f: FederatedFlags, token: string): LocalNode {
  const args = [CLI, 'compute-node', '--host', '127.0.0.1', '--port', '0', '--coordinator', `127.0.0.1:${port}`];
  args.push('--load-probability', String(f.loadProbability), '--busy-delay-ms', String(f.busyDelayMs), '--seed', String(i), '--device', f.device);
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, [TOKEN_ENV]: token } });
  const node: LocalNode = { exit: null, log: '', stop: () => Promise.resolve() };
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (node.log = (node.log + s).slice(-4096)));
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => ((node.exit = { code, signal }), resolve())));
  node.stop = async () => {
    if (!node.exit) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return node;
}

async function waitForNodes(c: Coordinator, nodes: LocalNode[], timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (c.liveNodes < nodes.length) {
    const dead = nodes.findIndex((n) => n.exit);
    if (dead >= 0) throw new SmolError('NODE_EXITED', `compute node ${dead} exited before the job (code ${nodes[dead].exit!.code}, signal ${nodes[dead].exit!.signal})`);
    if (Date.now() - t0 > timeoutMs) throw new TimeoutError('waiting for compute nodes', [], timeoutMs, `${c.liveNodes} of ${nodes.length} registered`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
