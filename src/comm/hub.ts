/**
 * A hub whose spokes may come back, and spokes that find a hub that came back: what a parameter
 * server (rank 0, the hub) and its workers need to survive each other's restarts.
 *
 * The hub keeps a door open for the whole run (HubDoor) and publishes its address as rank 0's key
 * `smolcluster/rank/0/door` in the rendezvous store. A spoke that lost the hub, or that is a new
 * process replacing one that died, dials that address (redialHub) — re-reading the key and backing
 * off exponentially (capped) between tries until its deadline, whose error names the hub — and
 * authenticates like any data connection. The new connection is one duplex link: the transport
 * swaps it in for the peer (TcpTransport.replacePeer) and the group numbers point-to-point messages
 * with that peer from zero (ProcessGroup.resetPeer). The newest authenticated connection of a rank
 * wins: a spoke that reconnects after a silent network failure replaces its half-dead link. A
 * spoke that comes back after the hub's last update learns that the run is over (RunOverError).
 */
import type net from 'node:net';
import { TimeoutError } from '../util/errors.js';
import { RunOverError } from './elastic.js';
import { ProcessGroup, type ProcessGroupOptions } from './process_group.js';
import { StoreClient } from './store/client.js';
import { rankKey, sharedKey } from './store/keys.js';
import { Connection, type ConnectionOptions } from './tcp/connection.js';
import { acceptHandshake, dialHandshake, logRefused, PendingHandshakes, type HandshakeConfig } from './tcp/handshake.js';
import { parseAddress } from './tcp/mesh.js';
import { boundPort, listen } from './tcp/net.js';
import { TcpTransport } from './tcp/transport.js';

export const HUB_RANK = 0;
/** Where the hub's door is published (rank 0's own key: only it may write it). */
export const DOOR_KEY = rankKey(HUB_RANK, 'door');

/** A counter the hub raises when the run is over: a spoke that comes back later has nothing to rejoin. */
export const OVER_KEY = sharedKey('hub_over');

/** Marks the run over (the hub, after its last update). */
export async function markRunOver(store: StoreClient): Promise<void> {
  await store.add(OVER_KEY, 1);
}

/** First and largest pause between a spoke's tries (ms). */
export const REDIAL_FIRST_MS = 100;
export const REDIAL_MAX_MS = 2000;

export interface HubPeers {
  token: string;
  worldSize: number;
  signature: string;
  connection?: ConnectionOptions;
  /** Deadline of one handshake (ms). */
  handshakeMs: number;
}

/** The hub's door: authenticated spokes that (re)connect are swapped into the hub's transport. */
export class HubDoor {
  private readonly pending = new PendingHandshakes();
  private listener: ((rank: number) => void) | null = null;
  private readonly early: number[] = [];

  private constructor(
    private readonly cfg: HubPeers,
    private readonly transport: TcpTransport,
    private readonly group: ProcessGroup,
    private server: net.Server | null = null,
  ) {}

  /** Opens the door on host (a free port) and publishes `advertise:port` under DOOR_KEY. */
  static async open(cfg: HubPeers, group: ProcessGroup, store: StoreClient, host: string, advertise: string): Promise<HubDoor> {
    const door = new HubDoor(cfg, group.transport as TcpTransport, group);
    door.server = await listen(host, 0, (socket) => door.onSocket(socket));
    await store.set(DOOR_KEY, `${advertise}:${boundPort(door.server)}`);
    return door;
  }

  /** Tells `listener` each spoke that came in (those that came before it was set, first). */
  onArrival(listener: (rank: number) => void): void {
    this.listener = listener;
    for (const rank of this.early.splice(0)) listener(rank);
  }

  close(): void {
    this.server?.close();
    this.server = null;
  }

  private onSocket(socket: net.Socket): void {
    const conn = Connection.accept(socket, this.cfg.connection);
    const hs: HandshakeConfig = { token: this.cfg.token, worldSize: this.cfg.worldSize, signature: this.cfg.signature, purpose: 'data', rank: HUB_RANK, timeoutMs: this.cfg.handshakeMs };
    acceptHandshake(conn, hs, (hello) => {
      if (!Number.isInteger(hello.rank) || hello.rank <= HUB_RANK || hello.rank >= this.cfg.worldSize) {
        return { code: 'BAD_RANK', message: `rank ${hello.rank} is not a worker of this run (ranks 1..${this.cfg.worldSize - 1})` };
      }
      return hello.rank;
    }, this.pending)
      .then(({ rank }) => {
        this.transport.replacePeer(rank, conn, conn.remote);
        this.group.resetPeer(rank);
        if (this.listener) this.listener(rank);
        else this.early.push(rank);
      })
      .catch((err: Error) => logRefused('refused a reconnecting worker', err));
  }
}

export interface RedialOptions extends HubPeers {
  rank: number;
  group: ProcessGroup;
  /** The store to read the door from: the current client, or a new one if the old one died (deadline in ms). */
  store(deadlineMs: number): Promise<StoreClient>;
  /** What the store is, for the deadline's message ("the rendezvous store at host:port"). */
  storeName: string;
  deadlineMs: number;
}

/**
 * Dials the hub's door until connected or the deadline: each try re-reads the door's address
 * (a restarted hub publishes a new one), pauses double the last time (100 ms up to 2 s) after a
 * failure, and the TimeoutError names the hub, its last address and the last reason.
 */
export async function redialHub(o: RedialOptions): Promise<void> {
  const start = Date.now();
  let pause = REDIAL_FIRST_MS;
  let where = 'an address not yet published';
  let reason = 'not tried';
  let tries = 0;
  for (;;) {
    const left = o.deadlineMs - (Date.now() - start);
    if (left <= 0) {
      throw new TimeoutError('reconnect', [HUB_RANK], Date.now() - start,
        `the parameter server (rank 0) at ${where} did not come back after ${tries} tries; last: ${reason}`);
    }
    tries++;
    try {
      const store = await o.store(Math.min(left, REDIAL_MAX_MS * 2));
      if ((await store.add(OVER_KEY, 0)) > 0) throw new RunOverError();
      where = Buffer.from(await store.get(DOOR_KEY, Math.min(left, REDIAL_MAX_MS))).toString('utf8');
      const { host, port } = parseAddress(where);
      const conn = await Connection.dial(host, port, o.connection);
      conn.peerRank = HUB_RANK;
      const hs = { token: o.token, worldSize: o.worldSize, signature: o.signature, purpose: 'data' as const, rank: o.rank, timeoutMs: Math.min(left, o.handshakeMs) };
      await dialHandshake(conn, hs);
      (o.group.transport as TcpTransport).replacePeer(HUB_RANK, conn, where);
      o.group.resetPeer(HUB_RANK);
      return;
    } catch (err) {
      if (err instanceof RunOverError) throw err;
      reason = describe(err, o.storeName);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(pause, o.deadlineMs - (Date.now() - start)))));
    pause = Math.min(pause * 2, REDIAL_MAX_MS);
  }
}

/** A transport and group with no links yet: a process that joins a running hub, or a hub restarted. */
export function unlinkedGroup(rank: number, worldSize: number, opts: ProcessGroupOptions = {}): ProcessGroup {
  return new ProcessGroup(new TcpTransport(rank, worldSize, Array.from({ length: worldSize }, () => null), opts.timeoutMs), opts);
}

function describe(err: unknown, storeName: string): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ECONNREFUSED') return 'connection refused (not listening yet)';
  if (e.code === 'TIMEOUT' && /store/.test(e.message)) return `${storeName} did not answer (${e.message})`;
  return e.message ?? String(err);
}
