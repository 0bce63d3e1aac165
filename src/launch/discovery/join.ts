/**
 * `worker --discover`: finds its cluster's master on the local link by DNS-SD, dials the store it
 * advertises (authenticated with the cluster token like any other client: discovery gives the
 * address only) and takes the rank the store hands out (rank -1 in the handshake: the lowest free
 * one). The store connection it opened is the one the rendezvous then goes on with, so the rank is
 * held from the moment it is given.
 */
import { StoreClient } from '../../comm/store/client.js';
import { resolveToken } from '../../comm/token.js';
import { PROTOCOL_VERSION } from '../../comm/wire/frame.js';
import { ConfigError } from '../../util/errors.js';
import { chooseInterface } from '../iface.js';
import { type TrainFlags, clusterSignature, configFrom } from '../worker_flags.js';
import { chooseCluster, matchingClusters, notFoundError } from './choose.js';
import { browseClusters } from './mdns.js';
import { type FoundCluster, checkClusterName, describeCluster } from './record.js';

export interface DiscoverFlags {
  discover?: boolean;
  clusterName?: string;
  /** Seconds to look for the master. */
  discoverTimeout?: number;
  rank?: number;
  master?: string;
  worldSize?: number;
}

/** Default seconds a `worker --discover` looks for its master. */
export const DISCOVER_TIMEOUT_S = 10;
/** After its cluster answers, how long a worker listens on for a second master of that name. */
const SETTLE_MS = 1500;

export interface Discovered {
  cluster: FoundCluster;
  /** The rank the store gave, held by `store`. */
  rank: number;
  store: StoreClient;
}

/** The flags --discover cannot be combined with, or null. */
export function discoverConflict(flags: DiscoverFlags): string | null {
  if (flags.rank !== undefined) return '--rank (the store hands a discovered worker its rank)';
  if (flags.master !== undefined) return '--master (discovery finds it)';
  return null;
}

/** Finds the master, checks what can be checked before dialing, and takes a rank from its store. */
export async function discoverAndClaim(flags: TrainFlags & DiscoverFlags, say: (line: string) => void): Promise<Discovered> {
  const conflict = discoverConflict(flags);
  if (conflict) throw new ConfigError('command line', '--discover', `cannot be combined with ${conflict}`);
  const clusterName = flags.clusterName !== undefined ? checkClusterName(flags.clusterName) : undefined;
  const timeoutMs = (flags.discoverTimeout ?? DISCOVER_TIMEOUT_S) * 1000;
  const interfaceAddress = chooseInterface({ requested: flags.iface, masterHost: '127.0.0.1' })?.address;
  const looked = await browseClusters({
    timeoutMs, interfaceAddress, settleMs: SETTLE_MS,
    enough: (found) => matchingClusters(found, clusterName).length > 0,
    warn: (line) => say(`warning: ${line}`),
  });
  const cluster = chooseCluster(looked.found, { clusterName, protocolVersion: PROTOCOL_VERSION });
  if (!cluster) throw notFoundError({ clusterName, waitedMs: looked.waitedMs, others: looked.found, unreadable: looked.unreadable.length });
  const config = configFrom(flags, 1);
  checkAgainstAdvert(cluster, flags, config.model);
  say(`found cluster ${describeCluster(cluster)} by DNS-SD; asking its store for a rank`);
  const store = await StoreClient.connect({
    host: cluster.host, port: cluster.port, token: resolveToken({}), worldSize: cluster.worldSize,
    signature: clusterSignature(config, flags), rank: -1, timeoutMs: flags.timeout * 1000,
  });
  return { cluster, rank: store.rank, store };
}

/** What the advert lets a worker check before it dials: the world size it was told, and its model. */
export function checkAgainstAdvert(c: FoundCluster, flags: { worldSize?: number }, model: string): void {
  if (flags.worldSize !== undefined && flags.worldSize !== c.worldSize) {
    throw new ConfigError('command line', '--world-size', `${flags.worldSize}, but cluster ${describeCluster(c)} has ${c.worldSize} processes; leave --world-size out with --discover`);
  }
  if (c.model !== '?' && c.model !== model) {
    throw new ConfigError('command line', '--model', `this worker trains ${model}, but cluster ${describeCluster(c)} trains ${c.model}: give the worker the run's training flags (the same --model, --config or --nn file)`);
  }
}
