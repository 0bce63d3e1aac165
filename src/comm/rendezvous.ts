/**
 * Rendezvous: from "I am rank r of n, the master is host:port" to a ready ProcessGroup.
 *
 *   1. rank 0 (or a launcher) hosts the store on the master address;
 *   2. every worker connects to the store, which checks (or assigns) its rank;
 *   3. every worker opens its data listener and publishes "host:port" under smolcluster/addr/<rank>;
 *   4. every worker waits for all n addresses, then builds the full mesh (mesh.ts).
 *
 * One deadline covers the start-up; when it expires the error names the ranks that never arrived.
 */
import { SmolError, TimeoutError } from '../util/errors.js';
import { ProcessGroup, type ProcessGroupOptions } from './process_group.js';
import type { RefusalError } from './tcp/handshake.js';
import { StoreClient } from './store/client.js';
import { ADDRESS_PREFIX } from './store/keys.js';
import { StoreTimeoutError } from './store/protocol.js';
import { StoreServer } from './store/server.js';
import type { ConnectionOptions } from './tcp/connection.js';
import type { ShmNative } from './shm/native.js';
import { shareMemory } from './shm/negotiate.js';
import { MeshListener } from './tcp/mesh.js';
import type { TcpTransport } from './tcp/transport.js';
import { resolveToken } from './token.js';

export interface RendezvousOptions {
  /** This worker's rank, or -1 to have the store assign one. */
  rank: number;
  worldSize: number;
  masterHost: string;
  masterPort: number;
  /** Host the store in this process (default: rank 0). A launcher that hosts it passes false. */
  hostStore?: boolean;
  /** Cluster token (default: $SMOLCLUSTER_TOKEN). */
  token?: string;
  /** Opaque string all ranks must agree on (e.g. the model's shape signature). */
  signature?: string;
  /** Address the data listener binds (default: the master host if loopback, else 0.0.0.0). */
  listenHost?: string;
  /** Address peers dial to reach us (default: our address on the route to the master). */
  advertiseHost?: string;
  /** Start-up deadline (ms). */
  timeoutMs?: number;
  /** Options of the resulting group (including its per-operation deadline). */
  group?: ProcessGroupOptions;
  connection?: ConnectionOptions;
  /**
   * Exchange data with ranks on the same host through shared memory (comm/shm/), the rest over TCP.
   * The group then runs on the shared-memory transport; `Cluster.transport` stays the TCP one (control
   * plane, metric stream). Off by default: recovery paths that swap TCP links (comm/hub.ts) need TCP.
   */
  sharedMemory?: ShmNative | null;
  /**
   * A client of the store already connected (a discovered worker claimed its rank with it, rank
   * -1): used instead of dialing the store again; `rank` is then its rank.
   */
  store?: StoreClient;
  /** A store this process hosts apart from the rendezvous (bound elsewhere): a peer it refuses for its settings ends the wait too. */
  watchStore?: StoreServer;
  /** Told as each rank registers its address (rank 0 prints the joins): the rank, its address, how many have. */
  onJoin?: (rank: number, address: string, joined: number, total: number) => void;
}

export interface Cluster {
  rank: number;
  size: number;
  group: ProcessGroup;
  transport: TcpTransport;
  store: StoreClient;
  /** Set on the process hosting the store. */
  storeServer: StoreServer | null;
  close(): Promise<void>;
}

export const ADDRESS_KEY = ADDRESS_PREFIX;

export async function rendezvous(opts: RendezvousOptions): Promise<Cluster> {
  const start = Date.now();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const left = (): number => Math.max(1, timeoutMs - (Date.now() - start));
  const token = resolveToken({ configured: opts.token });
  const signature = opts.signature ?? '';
  const n = opts.worldSize;
  if (!Number.isInteger(n) || n < 1) throw new SmolError('BAD_WORLD', `world size must be a positive integer, got ${n}`);

  const hostStore = opts.hostStore ?? opts.rank === 0;
  const common = { token, worldSize: n, signature, connection: opts.connection };
  // A rank 0 hosting the store keeps rank 0 for itself when a discovered worker asks for a rank.
  const storeServer = hostStore ? await StoreServer.start({ ...common, host: opts.masterHost, port: opts.masterPort, timeoutMs, firstAssigned: opts.rank === 0 ? 1 : 0 }) : null;
  let store: StoreClient | null = null;
  let listener: MeshListener | null = null;
  // A worker the store turns away for its settings will never register: the wait ends with why.
  const watched = storeServer ?? opts.watchStore ?? null;
  const refused = watched ? refusedWhileWaiting(watched, () => missingRanks(watched, n).filter((r) => r !== opts.rank)) : null;
  try {
    const masterPort = storeServer?.port ?? opts.masterPort;
    store = opts.store ?? await StoreClient.connect({ ...common, host: opts.masterHost, port: masterPort, rank: opts.rank, timeoutMs: left() });
    const rank = store.rank;
    const listenHost = opts.listenHost ?? (isLoopback(opts.masterHost) ? opts.masterHost : '0.0.0.0');
    const mesh = { rank, size: n, token, signature, timeoutMs: left(), opTimeoutMs: opts.group?.timeoutMs, connection: opts.connection };
    listener = await MeshListener.open(mesh, listenHost, 0);
    const advertise = opts.advertiseHost ?? (isWildcard(listenHost) ? store.localAddress : listenHost);
    await store.set(`${ADDRESS_KEY}${rank}`, `${advertise}:${listener.port}`);
    if (opts.onJoin) watchJoins(store, n, left(), opts.onJoin);
    const collecting = collectAddresses(store, n, left(), Date.now() - start);
    const addresses = refused ? await Promise.race([collecting, refused.promise]) : await collecting;
    const transport = await listener.connect(addresses);
    const data = opts.sharedMemory ? await shareMemory(transport, { timeoutMs: left(), native: opts.sharedMemory }) : transport;
    const group = new ProcessGroup(data, opts.group);
    const cluster: Cluster = { rank, size: n, group, transport, store, storeServer, close: () => closeAll(cluster) };
    return cluster;
  } catch (err) {
    listener?.close();
    store?.close();
    await storeServer?.close();
    throw err;
  } finally {
    refused?.dispose();
  }
}

/** Rejects at the first peer the store refuses for its settings, naming it, what differs and whom rank 0 was waiting for. */
function refusedWhileWaiting(server: StoreServer, waitingFor: () => number[]): { promise: Promise<never>; dispose: () => void } {
  let dispose = (): void => {};
  const promise = new Promise<never>((_, reject) => {
    dispose = server.onMismatch((r) => {
      const missing = waitingFor();
      const waiting = missing.length ? ` while waiting for rank${missing.length === 1 ? '' : 's'} ${missing.join(', ')}` : '';
      reject(new SmolError('REFUSED', `stopped${waiting}: ${r.message}`));
    });
  });
  promise.catch(() => {}); // observed through the race; never unhandled
  return { promise, dispose: () => dispose() };
}

/** Ranks whose address the store does not hold yet. */
function missingRanks(server: StoreServer, n: number): number[] {
  return Array.from({ length: n }, (_, r) => r).filter((r) => !server.has(`${ADDRESS_KEY}${r}`));
}

async function collectAddresses(store: StoreClient, n: number, timeoutMs: number, elapsed: number): Promise<string[]> {
  const keys = Array.from({ length: n }, (_, r) => `${ADDRESS_KEY}${r}`);
  try {
    await store.wait(keys, timeoutMs);
  } catch (err) {
    if (!(err instanceof StoreTimeoutError)) throw err;
    const missing = err.missing.map((k) => Number(k.slice(ADDRESS_KEY.length))).sort((a, b) => a - b);
    throw new TimeoutError('rendezvous', missing, elapsed + timeoutMs, `${missing.length === 1 ? 'it' : 'they'} never registered with the master`);
  }
  const values = await Promise.all(keys.map((k) => store.get(k, timeoutMs)));
  return values.map((v) => Buffer.from(v).toString('utf8'));
}

/** One wait per rank's address key, so each join is reported as it happens (failures are collectAddresses' to report). */
function watchJoins(store: StoreClient, n: number, timeoutMs: number, onJoin: NonNullable<RendezvousOptions['onJoin']>): void {
  let joined = 0;
  for (let r = 0; r < n; r++) {
    store.get(`${ADDRESS_KEY}${r}`, timeoutMs).then(
      (v) => onJoin(r, Buffer.from(v).toString('utf8'), ++joined, n),
      () => {},
    );
  }
}

async function closeAll(c: Cluster): Promise<void> {
  await c.group.close(); // the shared-memory transport, if any, closes the TCP one under it
  await c.transport.close();
  c.store.close();
  await c.storeServer?.close();
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}
