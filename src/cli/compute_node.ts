import { Command, Option } from 'commander';
import { DEVICE_CHOICES, type DeviceChoice } from '../config/options/choices.js';
import { SmolError } from '../util/errors.js';
import type { NodeDevice } from '../cluster/messages.js';
import { CPU } from '../tensor/storage.js';
import { defaultListenHost, listenWarning } from '../launch/listen.js';
import { ComputeNode } from '../cluster/compute_node.js';
import { backend } from '../tensor/dispatch.js';
import { clusterToken, either, untilSignal, parseHostPort, parsePort, parseProbability } from './cluster_flags.js';
import { nonNegativeInt, positiveInt } from './options.js';

interface ComputeNodeFlags {
  port?: number;
  loadProbability?: number;
  coordinator?: string;
  host?: string;
  busyDelayMs: number;
  heartbeatMs: number;
  seed?: number;
  threads: number;
  device: DeviceChoice;
}

/**
 * `smolcluster compute-node --port P --coordinator HOST:PORT [--load-probability p]`, or the
 * original's `compute-node 9091 0.2` (then the coordinator finds it through its nodes file).
 */
export function computeNodeCommand(): Command {
  return new Command('compute-node')
    .description('a compute node of cluster jobs: trains the tasks the coordinator sends and returns weight deltas')
    .argument('[port]', "the original's positional port")
    .argument('[load_probability]', "the original's positional load probability")
    .option('--port <n>', 'port to listen on for tasks (0: any free port)', (s) => parsePort(s))
    .option('--load-probability <p>', 'probability that the node is busy for a task (it delays or rejects it)', (s) => parseProbability(s))
    .option('--coordinator <host:port>', 'register with this coordinator (and again after losing it)')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1, or every interface when --coordinator is on another machine; a warning says when it is not loopback)')
    .option('--busy-delay-ms <ms>', 'how long a busy node delays a task it does not reject (the original: 3000)', nonNegativeInt, 3000)
    .option('--heartbeat-ms <ms>', 'heartbeat interval', positiveInt, 500)
    .option('--seed <n>', 'seed of the busy draws (default: from the port)', nonNegativeInt)
    .option('--threads <n>', 'compute threads (1 keeps every node bit-identical)', positiveInt, 1)
    .addOption(new Option('--device <where>', "where this node trains every task it is given: cpu, gpu (a WebGPU adapter; fails at start without one), or auto (the GPU when a hardware adapter measures faster)").choices([...DEVICE_CHOICES]).default('cpu'))
    .action(async (portArg: string | undefined, loadArg: string | undefined, f: ComputeNodeFlags) => {
      const port = either(f.port, portArg, '--port', parsePort);
      const loadProbability = either(f.loadProbability, loadArg, '--load-probability', parseProbability, 0);
      backend().setThreads(f.threads);
      const device = await nodeDevice(f.device);
      const coordinator = f.coordinator ? parseHostPort(f.coordinator, '--coordinator') : undefined;
      const host = f.host ?? defaultListenHost(coordinator?.host);
      const node = await ComputeNode.start({
        host,
        port,
        token: clusterToken(),
        coordinator,
        loadProbability,
        busyDelayMs: f.busyDelayMs,
        heartbeatMs: f.heartbeatMs,
        seed: f.seed ?? port,
        handshakeTimeoutMs: 5000,
        device,
        onLog: (line) => process.stderr.write(`[compute-node :${node.port}] ${line}\n`),
      });
      process.stderr.write(`smolcluster: compute node on ${host}:${node.port} (load probability ${loadProbability}, device ${device})\n`);
      const exposed = listenWarning('compute node', host, node.port);
      if (exposed) process.stderr.write(`smolcluster: ${exposed}\n`);
      await untilSignal();
      await node.close();
    });
}

/**
 * The node's device, resolved before it listens: a node that cannot train where it was told never
 * joins a coordinator. The GPU modules load only when asked for (a cpu node starts as before).
 */
async function nodeDevice(choice: DeviceChoice): Promise<NodeDevice> {
  if (choice === 'cpu') return 'cpu';
  const { resolveDevice } = await import('../train/engine/device.js');
  const chosen = await resolveDevice(choice).catch((err: Error) => {
    throw new SmolError('BAD_FLAGS', `compute node: ${err.message}`);
  });
  if (chosen.note) process.stderr.write(`smolcluster: ${chosen.note}\n`);
  return chosen.device === CPU ? 'cpu' : 'webgpu';
}
