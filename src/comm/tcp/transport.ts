/**
 * The TCP transport over an established mesh. Each pair of ranks has two connections, one per
 * direction: we receive from a peer on the connection WE dialed (read in onread mode, payloads land
 * in place) and send to it on the one it dialed. Messages are matched by (peer, tag) in a Mailbox.
 *
 * A connection that drops fails the peer at once: pending and later ops on it reject with a
 * PeerError naming its rank and host, and 'peerLost' is emitted; a peer that said goodbye (BYE) fails
 * later ops too, but quietly.
 *
 * A link may also be one duplex connection (the peer dialed us and we send back on it: a star of
 * re-admitted peers, comm/hub.ts), and `replacePeer` swaps a peer's link for a new connection
 * when the peer comes back as a new process.
 */
import { EventEmitter } from 'node:events';
import { PeerError, ProtocolError, SmolError, TimeoutError } from '../../util/errors.js';
import type { Waiter } from '../deadline.js';
import { commLog } from '../log.js';
import { Mailbox, type Landing } from '../mailbox.js';
import { checkPeer, checkTag, DEFAULT_TIMEOUT_MS, type RecvOptions, type SendOptions, type Transport } from '../transport.js';
import { HEADER_BYTES, joinTag, MessageType, splitTag, type FrameHeader } from '../wire/frame.js';
import type { FrameSink } from '../wire/reader.js';
import type { Connection } from './connection.js';

export interface PeerLink {
  /** Dialed by us; the peer sends on it. */
  inbound: Connection;
  /** Dialed by the peer; we send on it. */
  outbound: Connection;
  /** "host:port" of the peer's listener. */
  host: string;
}

export class TcpTransport extends EventEmitter implements Transport {
  private readonly mailbox: Mailbox;
  private readonly failed = new Set<number>();
  private closed = false;
  /** Bytes of data frames handed to the sockets (headers included), counted where they are written. */
  bytesSent = 0;

  /** @internal rendezvous and MeshListener make them. */
  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly links: Array<PeerLink | null>,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    super();
    this.mailbox = new Mailbox(size, timeoutMs);
    links.forEach((link, peer) => link && this.attach(peer, link));
  }

  peerHost(peer: number): string {
    return this.links[peer]?.host ?? '?';
  }

  send(peer: number, tag: number, payload: Uint8Array, opts: SendOptions = {}): Promise<void> {
    checkPeer(this, peer);
    checkTag(tag);
    const failure = this.mailbox.peerFailure(peer);
    if (failure) return Promise.reject(failure);
    const link = this.links[peer];
    if (!link) return Promise.reject(new PeerError(peer, '?', 'not connected'));
    const t = splitTag(tag);
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const deadline = opts.deadline;
    if (!opts.uncounted) this.bytesSent += HEADER_BYTES + payload.length;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        else deadline?.untrack(waiter);
        if (err) reject(err);
        else resolve();
      };
      // The collective's deadline if it has one, else a timer of this send's own.
      const waiter: Waiter = { peer, expire: finish };
      const timer = deadline ? null : setTimeout(() => finish(new TimeoutError(opts.op ?? 'send', [peer], timeoutMs, 'it is not reading')), timeoutMs);
      deadline?.track(waiter);
      link.outbound.send(MessageType.Data, this.rank, t.seq, t.tag, payload).then(
        () => finish(null),
        (err: Error) => finish(this.mailbox.peerFailure(peer) ?? new PeerError(peer, this.peerHost(peer), `send failed: ${err.message}`, { cause: err })),
      );
    });
  }

  recv(peer: number, tag: number, opts?: RecvOptions): Promise<Uint8Array> {
    checkPeer(this, peer);
    checkTag(tag);
    return this.mailbox.recv(peer, tag, opts);
  }

  /** Orderly close: BYE to every peer, then wait (briefly) for the sockets to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.mailbox.close(new SmolError('CLOSED', `rank ${this.rank}: transport closed`));
    const waits: Promise<void>[] = [];
    for (const conn of this.connections()) {
      waits.push(waitClosed(conn, 2000));
      conn.bye(this.rank);
    }
    await Promise.all(waits);
  }

  /** Crash simulation for tests: drop every socket without a goodbye. */
  abort(): void {
    this.closed = true;
    this.mailbox.close(new SmolError('CLOSED', `rank ${this.rank}: transport aborted`));
    for (const conn of this.connections()) conn.socket.destroy();
  }

  /**
   * The peer came back as a new process on `conn`, one duplex connection (comm/hub.ts): the old
   * link is dropped, what waited on it fails, and messages from and to the peer use `conn` now.
   * @internal
   */
  replacePeer(peer: number, conn: Connection, host: string): void {
    checkPeer(this, peer);
    if (this.closed) {
      conn.destroy();
      return;
    }
    const old = this.links[peer];
    const link: PeerLink = { inbound: conn, outbound: conn, host };
    // First, so the old connections' 'closed' events no longer count (lost() checks the link).
    this.links[peer] = link;
    const err = new PeerError(peer, old?.host ?? host, 'reconnected: its earlier connection was dropped');
    if (old) for (const c of new Set([old.inbound, old.outbound])) c.destroy(err);
    this.failed.delete(peer);
    this.mailbox.resetPeer(peer, err);
    this.attach(peer, link);
  }

  /**
   * Gives up on the peer now (e.g. it missed its deadline): its connections are closed, so a peer
   * that was only stalled sees the loss when it wakes, and can reconnect (comm/hub.ts).
   */
  disconnect(peer: number, reason: Error): void {
    checkPeer(this, peer);
    const link = this.links[peer];
    if (link) this.lost(peer, reason, link);
  }

  /** Whether the peer has a link that has not failed. */
  isConnected(peer: number): boolean {
    return this.links[peer] !== null && this.links[peer] !== undefined && !this.failed.has(peer) && !this.mailbox.peerFailure(peer);
  }

  private connections(): Set<Connection> {
    const out = new Set<Connection>();
    for (const link of this.links) if (link) for (const c of [link.inbound, link.outbound]) out.add(c);
    return out;
  }

  private attach(peer: number, link: PeerLink): void {
    const duplex = link.inbound === link.outbound;
    link.inbound.setSink(new InboundSink(peer, this.mailbox));
    if (!duplex) link.outbound.setSink(outboundSink(peer));
    for (const conn of duplex ? [link.inbound] : [link.inbound, link.outbound]) {
      conn.on('closed', (err: Error | null) => this.lost(peer, err, link));
      if (!conn.isOpen) this.lost(peer, new SmolError('CLOSED', `connection to ${link.host} closed during setup`), link);
    }
  }

  private lost(peer: number, err: Error | null, link: PeerLink): void {
    // A replaced link's connections end after the peer came back: not a loss.
    if (this.closed || this.failed.has(peer) || this.links[peer] !== link) return;
    this.failed.add(peer);
    if (err === null) {
      this.mailbox.failPeer(peer, new PeerError(peer, link.host, 'left the group (closed its transport)'));
      for (const conn of [link.inbound, link.outbound]) if (conn.isOpen && !conn.isLeaving) conn.bye(this.rank);
      return;
    }
    const perr = new PeerError(peer, link.host, `connection lost (${err.message})`, { cause: err });
    commLog('warn', perr.message);
    this.mailbox.failPeer(peer, perr);
    link.inbound.destroy(perr);
    link.outbound.destroy(perr);
    this.emit('peerLost', peer, perr);
  }
}

/** Receives a peer's data frames into the mailbox (in place when a recv was posted first). */
class InboundSink implements FrameSink {
  private landing: Landing | null = null;

  constructor(
    private readonly peer: number,
    private readonly mailbox: Mailbox,
  ) {}

  target(h: FrameHeader): Uint8Array {
    this.check(h);
    this.landing = this.mailbox.land(this.peer, joinTag(h.seq, h.tag), h.length);
    return this.landing.buf;
  }

  frame(h: FrameHeader, payload: Uint8Array): void {
    if (h.type === MessageType.Bye) return;
    this.check(h);
    const key = joinTag(h.seq, h.tag);
    const landing = this.landing;
    this.landing = null;
    if (landing) this.mailbox.arrived(this.peer, key, landing);
    else this.mailbox.deliver(this.peer, key, payload); // empty, or arrived before the sink was set
  }

  private check(h: FrameHeader): void {
    if (h.type !== MessageType.Data) throw new ProtocolError(`unexpected ${MessageType[h.type]} frame on a data connection`);
    if (h.rank !== this.peer) throw new ProtocolError(`frame claims sender rank ${h.rank} on rank ${this.peer}'s connection`);
  }
}

/** The connection we send on carries nothing back but a goodbye. */
function outboundSink(peer: number): FrameSink {
  return {
    target: (h) => {
      throw new ProtocolError(`unexpected ${MessageType[h.type]} frame from rank ${peer} on a send-only connection`);
    },
    frame: (h) => {
      if (h.type !== MessageType.Bye) throw new ProtocolError(`unexpected ${MessageType[h.type]} frame from rank ${peer} on a send-only connection`);
    },
  };
}

function waitClosed(conn: Connection, maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (conn.socket.destroyed) return resolve();
    const timer = setTimeout(() => {
      conn.socket.destroy();
      resolve();
    }, maxMs);
    timer.unref();
    conn.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
