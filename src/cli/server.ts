import { Command } from 'commander';
import { ConfigError } from '../util/errors.js';
import { addConfigFlags, placementFromFile } from './config.js';
import { addAdvertiseFlags } from './discovery_flags.js';
import { positiveInt } from './options.js';
import { addSinkFlags, addTrainFlags } from './train_flags.js';
import { type WorkerFlags, runWorker } from './worker.js';
import { addWorkerDashboardFlags } from './worker_dashboard.js';

interface ServerFlags extends WorkerFlags {
  numWorkers?: number;
  masterPort?: number;
}

/**
 * `smolcluster server`: rank 0 of a parameter-server cluster (ps or async-ps). It hosts the
 * rendezvous store on host_ip:port (cluster_config.yaml) and holds the model; workers join with
 * `smolcluster worker --rank N --master host:port` (or the same two config files).
 */
export function serverCommand(): Command {
  const cmd = new Command('server').description('the parameter server (rank 0) of a ps / async-ps cluster: hosts the rendezvous and holds the model');
  return addAdvertiseFlags(addWorkerDashboardFlags(addConfigFlags(addSinkFlags(addTrainFlags(cmd)))))
    .option('--num-workers <n>', 'workers that will join (cluster_config num_workers)', positiveInt)
    .option('--world-size <n>', 'processes including the server (default: num workers + 1)', positiveInt)
    .option('--master <host:port>', 'the address workers dial (cluster_config worker_connect_ip and port)')
    .option('--master-port <n>', 'rendezvous port (cluster_config port), with --bind-host', positiveInt)
    .option('--bind-host <addr>', 'address to listen on (cluster_config host_ip, e.g. 0.0.0.0)')
    .action(async (flags: ServerFlags, cmd: Command) => runServer(flags, placementFromFile(cmd)));
}

async function runServer(flags: ServerFlags, from: WorkerFlags['placementFrom'] = {}): Promise<void> {
  const strategy = flags.strategy ?? 'ps';
  if (strategy === 'allreduce') {
    throw new ConfigError('command line', '--strategy', 'allreduce has no server: start every process with `smolcluster worker`');
  }
  const worldSize = flags.worldSize ?? (flags.numWorkers !== undefined ? flags.numWorkers + 1 : undefined);
  if (worldSize === undefined) throw new ConfigError('command line', '--num-workers', 'how many workers join? pass --num-workers or --cluster cluster_config.yaml (num_workers)');
  if (worldSize < 2) throw new ConfigError('command line', '--num-workers', 'a parameter server needs at least one worker');
  let master = flags.master;
  if (!master && flags.masterPort) master = `${!flags.bindHost || flags.bindHost === '0.0.0.0' ? '127.0.0.1' : flags.bindHost}:${flags.masterPort}`;
  if (!master) throw new ConfigError('command line', '--master', 'no address: pass --master host:port (or --master-port), or --cluster with port');
  const worldFrom = flags.worldSize !== undefined ? from.worldSize : `${from.worldSize ?? '--num-workers'} + the server`;
  const masterFrom = flags.master !== undefined ? from.master : `${from.master ?? ''}${from.master ? ' ' : ''}--master-port`;
  await runWorker({ ...flags, strategy, rank: 0, worldSize, master, masterDerived: flags.master === undefined, placementFrom: { rank: 'server', worldSize: worldFrom, master: masterFrom } });
}
