/**
 * `smolcluster store`: the rendezvous store in a process of its own, so that an elastic run
 * (`worker --elastic` on several hosts) survives the loss of any worker, rank 0 included — the
 * torchrun way: its c10d store lives in the agent, not in a worker, and etcd outside both. The
 * local launcher (`train --workers N`) already hosts the store itself; this is the same store for
 * runs without it. Start it before the workers, with the workers' training flags (the store checks
 * every client's model signature) and their --world-size; they dial it with --master host:port.
 * It ends on SIGINT/SIGTERM, or by itself once the elastic run is over and every client has left.
 */
import { Command } from 'commander';
import { RUN_DONE_KEY } from '../comm/elastic.js';
import { StoreServer } from '../comm/store/server.js';
import { resolveToken } from '../comm/token.js';
import { resolvePlacementWithSources } from '../launch/env.js';
import { clusterSignature, configFrom } from '../launch/worker_flags.js';
import { readInitGguf } from '../train/run/init_source.js';
import { addConfigFlags } from './config.js';
import { addAdvertiseFlags } from './discovery_flags.js';
import { type AdvertiseFlags, advertiseStore, checkDiscoveryFlags } from '../launch/discovery/advertise.js';
import { positiveInt } from './options.js';
import { type TrainFlags, addTrainFlags } from './train_flags.js';

interface StoreFlags extends TrainFlags, AdvertiseFlags {
  worldSize?: number;
  master?: string;
  bindHost?: string;
}

/** How often the store checks whether the run is over and its clients gone. */
const POLL_MS = 500;

export function storeCommand(): Command {
  const cmd = new Command('store').description('host the rendezvous store in its own process: an --elastic run on several hosts then survives any worker, rank 0 included (docs/ELASTIC.md)');
  return addAdvertiseFlags(addConfigFlags(addTrainFlags(cmd)))
    .option('--world-size <n>', 'workers of the run (env WORLD_SIZE)', positiveInt)
    .option('--master <host:port>', 'the address workers dial (env MASTER_ADDR, MASTER_PORT)')
    .option('--bind-host <addr>', 'address to listen on (default: the --master host; 0.0.0.0 for every interface)')
    .action(async (flags: StoreFlags) => runStore(flags));
}

async function runStore(flags: StoreFlags): Promise<void> {
  checkDiscoveryFlags(flags);
  const { placement: place } = resolvePlacementWithSources({ ...flags, rank: 0 });
  await readInitGguf(flags.init);
  const config = configFrom(flags, 1);
  const signature = clusterSignature(config, flags);
  const host = flags.bindHost ?? place.masterHost;
  const store = await StoreServer.start({ host, port: place.masterPort, token: resolveToken({}), worldSize: place.worldSize, signature, timeoutMs: flags.timeout * 1000 });
  process.stderr.write(`smolcluster: rendezvous store for ${place.worldSize} workers on ${host}:${store.port}; workers use --master ${place.masterHost}:${store.port}\n`);
  const say = (line: string): void => void process.stderr.write(`smolcluster: ${line}\n`);
  const ad = await advertiseStore({ flags, listenHost: host, port: store.port, listenHint: '--bind-host 0.0.0.0, or this host\'s address', worldSize: place.worldSize, model: config.model, strategy: flags.strategy ?? 'allreduce' }, say)
    .catch(async (err: unknown) => {
      await store.close();
      throw err;
    });
  await new Promise<void>((resolve) => {
    const stop = (why: string): void => {
      clearInterval(poll);
      process.stderr.write(`smolcluster: store: ${why}; closing\n`);
      resolve();
    };
    const poll = setInterval(() => {
      if (store.has(RUN_DONE_KEY) && store.connected === 0) stop('the run is over and every worker has left');
    }, POLL_MS);
    process.once('SIGINT', () => stop('interrupted'));
    process.once('SIGTERM', () => stop('terminated'));
  });
  await ad?.close();
  await store.close();
}
