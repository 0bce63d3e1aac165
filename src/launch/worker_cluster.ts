/**
 * How a worker process joins its cluster: the rendezvous store it hosts or dials, the interface its
 * data connections use, the start-up rendezvous (or, for a restarted ps process, the run under
 * way) and the ps recovery hooks. What it returns is closed by `leave`.
 */
import os from 'node:os';
import { RunOverError } from '../comm/elastic.js';
import { type Cluster, rendezvous } from '../comm/rendezvous.js';
import { StoreServer } from '../comm/store/server.js';
import { resolveToken } from '../comm/token.js';
import type { PsRecovery } from '../train/strategies/ps_common.js';
import type { Placement } from './env.js';
import { chooseInterface, isLoopbackHost } from './iface.js';
import { type PsPlace, joinRunningPs, loopbackFor, psRecovery, restartedProcess } from './ps_recovery.js';
import { LAUNCHER_STORE_ENV, type TrainFlags, sharedMemoryAllowed } from './worker_flags.js';
import { shmNative } from './shm_native.js';
import { tensorReducer } from '../train/boundary/reducer.js';
import { listenWarning } from './listen.js';
import type { StoreClient } from '../comm/store/client.js';
import { ConfigError } from '../util/errors.js';
import { type AdvertiseFlags, advertiseStore } from './discovery/advertise.js';
import type { Advertisement } from './discovery/mdns.js';

export interface JoinOptions {
  flags: Pick<TrainFlags, 'iface' | 'commBackend'> & { bindHost?: string; masterDerived?: boolean };
  place: Placement;
  signature: string;
  timeoutMs: number;
  /** ps: the server re-admits workers that come back, workers re-dial a restarted server (ps_recovery.ts). */
  recoverable: boolean;
  /** A restarted ps worker came back (for the run's events). */
  rejoined(rank: number, version: number): void;
  /** A discovered worker's store connection, holding the rank the store gave it (discovery/join.ts). */
  claimedStore?: StoreClient;
  /** --advertise and what the advertisement says besides the address (rank 0 hosting the store). */
  advertise?: { flags: AdvertiseFlags; model: string; strategy: string };
}

export interface JoinedCluster {
  cluster: Cluster;
  /** ps recovery's hooks, when the strategy recovers. */
  recovery?: PsRecovery;
  /** A restarted ps process that rejoined a running cluster (ps_recovery.ts restartedProcess). */
  restarted: boolean;
  /** Closes the ps door, the cluster and the store this process hosts. */
  leave(): Promise<void>;
}

/** Joins the cluster; 'over' when a restarted process finds the run already over. */
export async function joinCluster(o: JoinOptions): Promise<JoinedCluster | 'over'> {
  const { flags, place, signature, timeoutMs } = o;
  // A server binding host_ip (e.g. 0.0.0.0) hosts the store itself there and dials it on loopback.
  const launcherStore = process.env[LAUNCHER_STORE_ENV] === '1';
  const bind = place.rank === 0 && flags.bindHost && !launcherStore ? flags.bindHost : undefined;
  const hostsStore = place.rank === 0 && !launcherStore;
  if (o.advertise?.flags.advertise && !hostsStore) {
    throw new ConfigError('command line', '--advertise', `only the process hosting the rendezvous store advertises it (rank 0, the server, or \`smolcluster store\`); this is rank ${place.rank}${launcherStore ? ' under a launcher' : ''}`);
  }
  const store = bind ? await StoreServer.start({ host: bind, port: place.masterPort, token: resolveToken({}), worldSize: place.worldSize, signature, timeoutMs, firstAssigned: 1 }) : null;
  const iface = chooseInterface({ requested: flags.iface, masterHost: place.masterHost });
  const advertise = iface?.address ?? (bind && !isLoopbackHost(place.masterHost) ? place.masterHost : undefined);
  const connectHost = bind && !flags.masterDerived ? place.masterHost : undefined;
  if (place.rank === 0) process.stderr.write(`smolcluster: ${masterAnnouncement(bind ?? place.masterHost, place.masterPort, place.worldSize, undefined, connectHost)}\n`);
  const exposed = bind ? listenWarning('rendezvous store', bind, place.masterPort, '--bind-host (cluster_config host_ip)') : null;
  if (exposed) process.stderr.write(`smolcluster: ${exposed}\n`);
  let ad: Advertisement | null = null;
  try {
    ad = hostsStore && o.advertise ? await advertiseStore({
      flags: o.advertise.flags, listenHost: bind ?? place.masterHost, port: store?.port ?? place.masterPort,
      listenHint: bind ? '--bind-host 0.0.0.0, or this host\'s address' : `--master <this host's LAN address>:${place.masterPort}`, worldSize: place.worldSize, model: o.advertise.model, strategy: o.advertise.strategy,
    }, (line) => process.stderr.write(`smolcluster: ${line}\n`)) : null;
  } catch (err) {
    await store?.close();
    throw err;
  }
  const restarted = o.recoverable && restartedProcess();
  const hostStore = !bind && place.rank === 0 && !launcherStore;
  const psPlace: PsPlace = {
    rank: place.rank, worldSize: place.worldSize, masterHost: place.masterHost, masterPort: place.masterPort, token: resolveToken({}), signature, timeoutMs,
    listenHost: iface?.address ?? bind ?? (isLoopbackHost(place.masterHost) ? place.masterHost : '0.0.0.0'), advertiseHost: iface?.address ?? place.masterHost,
    hostStore, storeBind: bind,
  };
  const cluster = await (restarted ? joinRunningPs(psPlace) : rendezvous({
    rank: place.rank, worldSize: place.worldSize, masterHost: bind ? loopbackFor(bind) : place.masterHost, masterPort: place.masterPort,
    hostStore, listenHost: iface?.address ?? bind, advertiseHost: advertise, store: o.claimedStore, watchStore: store ?? undefined,
    signature, timeoutMs, group: { timeoutMs, reducer: tensorReducer },
    // Ranks on this host exchange through shared memory (comm/shm/) unless --comm-backend tcp; ps recovery swaps TCP links.
    sharedMemory: !o.recoverable && sharedMemoryAllowed(flags) ? shmNative() : null,
    onJoin: place.rank === 0 ? (r, address, joined, total) => process.stderr.write(`smolcluster: rank ${r} joined from ${address} (${joined}/${total})\n`) : undefined,
  })).catch(async (err: unknown) => {
    o.claimedStore?.close();
    await ad?.close();
    await store?.close();
    throw err;
  });
  const ps = o.recoverable ? await psRecovery(cluster, psPlace, restarted, o.rejoined).catch(async (err: unknown) => {
    await cluster.close();
    await ad?.close();
    await store?.close();
    if (err instanceof RunOverError) return 'over' as const;
    throw err;
  }) : null;
  if (ps === 'over') return 'over';
  return {
    cluster, recovery: ps?.recovery, restarted,
    leave: async () => {
      ps?.close();
      await ad?.close();
      await cluster.close();
      await store?.close();
    },
  };
}

/**
 * What rank 0 tells the user: the address workers should use, and that it waits for them. Bound to a
 * wildcard, that is the address workers were told to dial (`connectHost`: cluster_config
 * worker_connect_ip, --master) when there is one, else every address of this host.
 */
export function masterAnnouncement(host: string, port: number, worldSize: number, interfaces = os.networkInterfaces(), connectHost?: string): string {
  const wildcard = host === '0.0.0.0' || host === '::';
  const own = Object.values(interfaces).flatMap((infos) => (infos ?? []).filter((i) => i.family === 'IPv4' && !i.internal).map((i) => i.address));
  const hosts = !wildcard ? [host] : connectHost ? [connectHost] : own.length > 0 ? own : ['127.0.0.1'];
  const use = hosts.map((h) => `${h}:${port}`).join(' or ');
  return `rank 0: rendezvous on ${host}:${port}; workers use --master ${use} (or MASTER_ADDR=${hosts[0]} MASTER_PORT=${port}); waiting for ${worldSize - 1} worker${worldSize === 2 ? '' : 's'}`;
}
