/**
 * `worker --strategy ps`: what lets the server and its workers survive each other's restarts
 * (train/strategies/param_server.ts over comm/hub.ts). The server opens a door for workers that
 * come back; a worker re-dials a server it lost. A process the local launcher restarted (it sets
 * SMOLCLUSTER_RESTARTS) joins the running run instead of the start-up rendezvous: a worker dials
 * the server's door, a server (resumed from its checkpoint) opens a new door and waits for them.
 */
import { DOOR_KEY, HubDoor, type HubPeers, markRunOver, redialHub, unlinkedGroup } from '../comm/hub.js';
import type { Cluster } from '../comm/rendezvous.js';
import { StoreClient } from '../comm/store/client.js';
import { StoreServer } from '../comm/store/server.js';
import type { TcpTransport } from '../comm/tcp/transport.js';
import { RESTARTS_ENV } from './elastic_supervisor.js';
import type { PsRecovery } from '../train/strategies/ps_common.js';
import { LAUNCHER_STORE_ENV } from './worker_flags.js';

export interface PsPlace {
  rank: number;
  worldSize: number;
  masterHost: string;
  masterPort: number;
  token: string;
  signature: string;
  /** Every deadline: the reconnect, the handshakes, the store (ms). */
  timeoutMs: number;
  /** The server's door binds here (default: the master host if loopback, else 0.0.0.0) ... */
  listenHost: string;
  /** ... and workers dial it here (what they know rank 0 by: the master host, or --iface's address). */
  advertiseHost: string;
  /** This process hosts the rendezvous store (rank 0 without a launcher); the store binds `storeBind`. */
  hostStore: boolean;
  storeBind?: string;
}

/** A process the launcher restarted: it joins the run under way. */
export function restartedProcess(): boolean {
  return Number(process.env[RESTARTS_ENV] ?? 0) > 0;
}

/** A restarted process's cluster: the store, and a group whose links come through the door. */
export async function joinRunningPs(p: PsPlace): Promise<Cluster> {
  const common = { token: p.token, worldSize: p.worldSize, signature: p.signature };
  const storeServer = p.hostStore ? await StoreServer.start({ ...common, host: p.storeBind ?? p.masterHost, port: p.masterPort, timeoutMs: p.timeoutMs }) : null;
  const storeHost = p.storeBind ? loopbackFor(p.storeBind) : p.masterHost;
  const store = await StoreClient.connect({ ...common, host: storeHost, port: p.masterPort, rank: p.rank, timeoutMs: p.timeoutMs }).catch(async (err: unknown) => {
    await storeServer?.close();
    throw err;
  });
  const group = unlinkedGroup(p.rank, p.worldSize, { timeoutMs: p.timeoutMs });
  const transport = group.transport as TcpTransport;
  const cluster: Cluster = {
    rank: p.rank, size: p.worldSize, group, transport, store, storeServer,
    close: async () => {
      await transport.close();
      cluster.store.close();
      await storeServer?.close();
    },
  };
  return cluster;
}

/** The recovery hooks of this process's ps strategy; `close` shuts the server's door. */
export async function psRecovery(
  cluster: Cluster, p: PsPlace, restarted: boolean, rejoined?: (rank: number, version: number) => void,
): Promise<{ recovery: PsRecovery; close(): void }> {
  const peers: HubPeers = { token: p.token, worldSize: p.worldSize, signature: p.signature, handshakeMs: Math.min(p.timeoutMs, 10_000) };
  if (cluster.rank === 0) {
    const door = await HubDoor.open(peers, cluster.group, cluster.store, p.listenHost, p.advertiseHost);
    const over = (): Promise<void> => markRunOver(cluster.store);
    return { recovery: { restarted, onRejoin: (listener) => door.onArrival(listener), over, rejoined }, close: () => door.close() };
  }
  const launcherStore = !p.hostStore && process.env[LAUNCHER_STORE_ENV] === '1';
  const storeName = `the rendezvous store at ${p.masterHost}:${p.masterPort}${launcherStore ? '' : " (it runs in rank 0's process, so it is gone until rank 0 restarts)"}`;
  const reconnect = (): Promise<void> => redialHub({
    ...peers, rank: cluster.rank, group: cluster.group, storeName, deadlineMs: p.timeoutMs,
    // The store may have gone down with the server (it runs in rank 0's process): reach the new one.
    store: async (deadlineMs) => {
      if (!cluster.store.failed) return cluster.store;
      cluster.store = await StoreClient.connect({
        token: p.token, worldSize: p.worldSize, signature: p.signature, host: p.masterHost, port: p.masterPort, rank: cluster.rank, timeoutMs: deadlineMs,
      });
      return cluster.store;
    },
  });
  if (restarted) await reconnect();
  return { recovery: { restarted, reconnect }, close: () => {} };
}

/** The key the door is published under (for tests and docs). */
export { DOOR_KEY };

/** Where a process reaches a store it binds on `bind` itself. */
export function loopbackFor(bind: string): string {
  if (bind === '0.0.0.0') return '127.0.0.1';
  if (bind === '::') return '::1';
  return bind;
}
