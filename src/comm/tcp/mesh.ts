/**
 * Builds the full mesh of data connections. Every rank listens (MeshListener, port 0 by default)
 * and, once it knows everyone's address, dials every other rank. So each ordered pair (a, b) has the
 * connection a dialed, on which b sends to a. Every connection is authenticated (handshake.ts);
 * an acceptor admits only ranks of this world, once each. The whole build has one deadline, and
 * its TimeoutError names the ranks still missing.
 */
import type net from 'node:net';
import { PeerError, TimeoutError } from '../../util/errors.js';
import type { Refusal } from '../wire/control.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { acceptHandshake, dialHandshake, logRefused, PendingHandshakes, type HandshakeConfig } from './handshake.js';
import { boundPort, dialWithRetry, listen } from './net.js';
import { TcpTransport, type PeerLink } from './transport.js';

export interface MeshConfig {
  rank: number;
  size: number;
  token: string;
  signature: string;
  /** Deadline for handshakes and for the whole mesh (ms). */
  timeoutMs: number;
  /** Default deadline of transport receives once built. */
  opTimeoutMs?: number;
  connection?: ConnectionOptions;
}

export class MeshListener {
  private readonly accepted = new Map<number, Connection>();
  private arrival: (() => void) | null = null;
  private readonly pending = new PendingHandshakes();
  /** Sockets that arrived before configure() (an elastic member listens before it knows its rank). */
  private held: net.Socket[] = [];
  private cfgOrNull: MeshConfig | null;

  private constructor(cfg: MeshConfig | null, private server: net.Server | null = null) {
    this.cfgOrNull = cfg;
  }

  /** Starts accepting authenticated data connections on host:port (0 = any free port); with cfg null, once configured. */
  static async open(cfg: MeshConfig | null, host: string, port = 0): Promise<MeshListener> {
    const m = new MeshListener(cfg);
    m.server = await listen(host, port, (socket) => m.onSocket(socket));
    return m;
  }

  /** Sets rank, world and signature of a listener opened without them, and admits the connections held meanwhile. */
  configure(cfg: MeshConfig): void {
    this.cfgOrNull = cfg;
    const held = this.held;
    this.held = [];
    for (const socket of held) if (!socket.destroyed) this.onSocket(socket);
  }

  private get cfg(): MeshConfig {
    if (!this.cfgOrNull) throw new Error('MeshListener used before configure()');
    return this.cfgOrNull;
  }

  get port(): number {
    return boundPort(this.server!);
  }

  /** Dials every other rank and waits for every other rank to dial us. `addresses[r]` is "host:port". */
  async connect(addresses: string[]): Promise<TcpTransport> {
    const { rank, size } = this.cfg;
    const start = Date.now();
    const inbound = new Map<number, Connection>();
    const dials: Promise<void>[] = [];
    for (let p = 0; p < size; p++) {
      if (p === rank) continue;
      dials.push(this.dial(p, addresses[p], start).then((c) => void inbound.set(p, c)));
    }
    try {
      await Promise.all(dials);
      await this.waitForAll(start);
    } catch (err) {
      for (const c of [...inbound.values(), ...this.accepted.values()]) c.destroy();
      throw err;
    } finally {
      this.close();
    }
    const links: Array<PeerLink | null> = [];
    for (let p = 0; p < size; p++) {
      links.push(p === rank ? null : { inbound: inbound.get(p)!, outbound: this.accepted.get(p)!, host: addresses[p] });
    }
    return new TcpTransport(rank, size, links, this.cfg.opTimeoutMs);
  }

  close(): void {
    this.server?.close();
    for (const socket of this.held) socket.destroy();
    this.held = [];
  }

  private async dial(peer: number, address: string, start: number): Promise<Connection> {
    const { host, port } = parseAddress(address);
    const left = this.cfg.timeoutMs - (Date.now() - start);
    const conn = await dialWithRetry({ host, port, rank: peer, what: `rank ${peer}` }, left, this.cfg.connection);
    conn.peerRank = peer;
    const res = await dialHandshake(conn, this.handshake(left));
    if (res.peer.rank !== peer) {
      conn.destroy();
      throw new PeerError(peer, address, `answered as rank ${res.peer.rank}`);
    }
    return conn;
  }

  private waitForAll(start: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.missing().length === 0) {
          clearTimeout(timer);
          this.arrival = null;
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.arrival = null;
        reject(new TimeoutError('connect', this.missing(), Date.now() - start, 'building the peer mesh'));
      }, Math.max(0, this.cfg.timeoutMs - (Date.now() - start)));
      this.arrival = check;
      check();
    });
  }

  private missing(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.cfg.size; p++) if (p !== this.cfg.rank && !this.accepted.get(p)?.isOpen) out.push(p);
    return out;
  }

  private onSocket(socket: net.Socket): void {
    if (!this.cfgOrNull) {
      this.held.push(socket);
      return;
    }
    const conn = Connection.accept(socket, this.cfg.connection);
    acceptHandshake(conn, this.handshake(this.cfg.timeoutMs), (hello) => this.admit(hello.rank, conn), this.pending)
      .then(() => this.arrival?.())
      .catch((err: Error) => logRefused('refused a data connection', err));
  }

  private admit(rank: number, conn: Connection): number | Refusal {
    const { size } = this.cfg;
    if (rank < 0 || rank >= size || rank === this.cfg.rank) {
      return { code: 'BAD_RANK', message: `rank ${rank} is not a peer of rank ${this.cfg.rank} (world size ${size})` };
    }
    const existing = this.accepted.get(rank);
    if (existing?.isOpen) return { code: 'DUPLICATE_RANK', message: `rank ${rank} is already connected from ${existing.remote}` };
    this.accepted.set(rank, conn); // now, so a second claim of the same rank is refused
    return rank;
  }

  private handshake(timeoutMs: number): HandshakeConfig {
    const { token, size, signature, rank } = this.cfg;
    return { token, worldSize: size, signature, purpose: 'data', rank, timeoutMs: Math.max(1, timeoutMs) };
  }
}

export function parseAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  let host = address.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new RangeError(`bad address '${address}' (expected host:port)`);
  return { host, port };
}
