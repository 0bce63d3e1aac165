/**
 * One TCP connection speaking frames. Reading: a dialed socket reads in "onread" mode, where the
 * FrameReader chooses each read's destination (large payloads land straight in their final buffer);
 * an accepted socket reads through 'data' events (Node offers onread only to sockets it dials), so
 * the data plane only ever receives on dialed sockets (see mesh.ts). Writing: frames written in one
 * event-loop turn are corked together into one writev; big payloads are never copied.
 *
 * A connection ends once, with a reason: null for an orderly goodbye, else the error (peer vanished,
 * reset, garbage or truncated frame). Protocol errors are logged and drop only this connection.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { ProtocolError, SmolError } from '../../util/errors.js';
import { commLog } from '../log.js';
import { DEFAULT_LIMITS, JOB_TYPES, encodeFrame, HEADER_BYTES, MessageType, PROTOCOL_VERSION, VersionMismatchError, writeHeader, type FrameHeader, type FrameLimits } from '../wire/frame.js';
import { FrameReader, type FrameSink } from '../wire/reader.js';
import { encodeJson } from '../wire/control.js';

export interface ConnectionOptions {
  /** Protocol version we speak (tests override it to provoke a mismatch). */
  version?: number;
  limits?: FrameLimits;
}

/** Payloads up to this size are copied next to their header (one buffer, one write). */
const COPY_MAX = 16 << 10;
const EMPTY = new Uint8Array(0);

export class Connection extends EventEmitter implements FrameSink {
  readonly version: number;
  /** "host:port" of the other end, for messages. */
  remote: string;
  /** Rank of the other end once known (-1 before the handshake). */
  peerRank = -1;
  socket!: net.Socket;
  private sink: FrameSink | null = null;
  private readonly reader: FrameReader;
  private corked = false;
  private ended = false;
  private byeSeen = false;
  private leaving = false;
  private readySeen = false;
  /** Set by the handshake once the peer proved the token; until then only handshake frames pass. */
  private authenticated = false;
  private readonly controlLimit: number;
  private role: 'dialer' | 'acceptor' = 'acceptor';
  private closedError: Error | null = null;
  private readonly controlQueue: Array<{ h: FrameHeader; payload: Uint8Array }> = [];
  private controlWaiter: ((f: { h: FrameHeader; payload: Uint8Array } | Error) => void) | null = null;

  private constructor(remote: string, opts: ConnectionOptions) {
    super();
    this.version = opts.version ?? PROTOCOL_VERSION;
    this.reader = new FrameReader(this, { version: this.version, limits: opts.limits ?? DEFAULT_LIMITS });
    this.controlLimit = (opts.limits ?? DEFAULT_LIMITS).maxControl;
    this.remote = remote;
  }

  /** Dials host:port; resolves once TCP is connected (before any handshake). */
  static dial(host: string, port: number, opts: ConnectionOptions = {}): Promise<Connection> {
    return new Promise((resolve, reject) => {
      // The reader must exist before net.connect: Node asks for the first read buffer right away.
      const conn = new Connection(`${host}:${port}`, opts);
      conn.role = 'dialer';
      const socket = net.connect({
        host,
        port,
        onread: { buffer: () => conn.reader.nextBuffer(), callback: (n: number) => conn.onBytes(n) },
      });
      conn.socket = socket;
      const fail = (err: Error): void => reject(err);
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.off('error', fail);
        conn.attach();
        socket.resume(); // flowing mode, so 'end' is emitted (no 'data' listener: onread consumes)
        resolve(conn);
      });
    });
  }

  /** Wraps a socket accepted by a server. */
  static accept(socket: net.Socket, opts: ConnectionOptions = {}): Connection {
    const conn = new Connection(describe(socket), opts);
    conn.socket = socket;
    socket.on('data', (chunk: Buffer) => conn.onChunk(chunk));
    conn.attach();
    return conn;
  }

  /** The peer proved it holds the cluster token (handshake.ts): frames of every type may follow. */
  markAuthenticated(): void {
    this.authenticated = true;
  }

  /** Routes all later frames to `sink` (after the handshake). Queued control frames go first. */
  setSink(sink: FrameSink): void {
    this.sink = sink;
    for (const f of this.controlQueue.splice(0)) sink.frame(f.h, f.payload);
  }

  /** Next frame while no sink is set (the handshake reads this way). */
  nextControl(): Promise<{ h: FrameHeader; payload: Uint8Array }> {
    const queued = this.controlQueue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(this.closedError ?? new SmolError('CLOSED', `connection to ${this.remote} closed`));
    return new Promise((resolve, reject) => {
      this.controlWaiter = (f) => (f instanceof Error ? reject(f) : resolve(f));
    });
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /** True once we started an orderly close (goodbye or refusal): let it flush, do not destroy. */
  get isLeaving(): boolean {
    return this.leaving;
  }

  /** Writes one frame; resolves when the bytes are handed to the OS. `payload` must not change until then. */
  send(type: MessageType, rank: number, seq: number, tag: number, payload: Uint8Array = EMPTY): Promise<void> {
    if (this.ended || this.socket.destroyed) return Promise.reject(this.closedError ?? new SmolError('CLOSED', `connection to ${this.remote} is closed`));
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      const h = { version: this.version, type, rank, seq, tag };
      this.cork();
      if (payload.length <= COPY_MAX) {
        this.socket.write(encodeFrame(h, payload), done);
      } else {
        const head = Buffer.allocUnsafe(HEADER_BYTES);
        writeHeader(head, 0, { ...h, length: payload.length });
        this.socket.write(head);
        this.socket.write(payload, done);
      }
    });
  }

  sendJson(type: MessageType, rank: number, value: unknown): Promise<void> {
    return this.send(type, rank, 0, 0, encodeJson(value));
  }

  /** Orderly goodbye: BYE, then FIN once written. */
  bye(rank: number): void {
    if (this.ended || this.socket.destroyed) return;
    this.leaving = true;
    this.send(MessageType.Bye, rank, 0, 0).catch(() => {});
    this.socket.end();
  }

  /** Refuses the peer: an ERROR frame saying why, then close. */
  refuse(rank: number, code: string, message: string): void {
    if (this.socket.destroyed) return;
    this.leaving = true;
    this.reader.release(); // nothing the peer sends now is read: only our ERROR frame matters
    this.sendJson(MessageType.Error, rank, { code, message }).catch(() => {});
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(err?: Error): void {
    this.finish(err ?? null);
    this.socket.destroy();
  }

  // FrameSink: the reader hands us frames; data frames go to the installed sink.
  target(h: FrameHeader): Uint8Array {
    if (!this.authenticated) this.checkUnauthenticated(h);
    if (this.sink) return this.sink.target(h);
    // The acceptor may send data right behind its READY, before our code has installed a sink:
    // keep such frames (in their own buffers) for the sink.
    return new Uint8Array(h.length);
  }

  frame(h: FrameHeader, payload: Uint8Array): void {
    if (!this.authenticated && h.length === 0) this.checkUnauthenticated(h);
    if (h.type === MessageType.Bye) this.byeSeen = true;
    if (h.type === MessageType.Ready) this.readySeen = true;
    if (this.sink) return this.sink.frame(h, payload);
    const waiter = this.controlWaiter;
    this.controlWaiter = null;
    if (waiter) waiter({ h, payload });
    else this.controlQueue.push({ h, payload });
  }

  /**
   * Before the peer has proved the token, only handshake frames pass, each at most a control
   * frame's size — checked on the header, before a payload buffer is allocated. The acceptor never
   * takes READY (the acceptor sends it); a dialer may take data right behind the acceptor's READY
   * (queued, delivered only once the handshake has verified the acceptor).
   */
  private checkUnauthenticated(h: FrameHeader): void {
    const handshake = h.type === MessageType.Hello || h.type === MessageType.Auth || h.type === MessageType.Error || h.type === MessageType.Bye;
    // Cluster-job frames (a compute node's first heartbeat) may follow READY in the same read, like data.
    const afterReady = h.type === MessageType.Data || JOB_TYPES.has(h.type);
    const dialerMay = this.role === 'dialer' && (h.type === MessageType.Ready || (afterReady && this.readySeen));
    if (!handshake && !dialerMay) throw new ProtocolError(`${MessageType[h.type]} frame before the peer authenticated`);
    if (!afterReady && h.length > this.controlLimit) {
      throw new ProtocolError(`oversize ${MessageType[h.type]} frame before authentication: ${h.length} bytes > ${this.controlLimit}`);
    }
  }

  private attach(): void {
    this.socket.setNoDelay(true);
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.finish(new SmolError(err.code ?? 'SOCKET', `connection to ${this.remote}: ${err.code ?? err.message}`, { cause: err })));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.finish(this.byeSeen || this.leaving ? null : new SmolError('CLOSED', `connection to ${this.remote} closed by peer`)));
  }

  private onBytes(n: number): boolean {
    if (this.ended) return true;
    try {
      this.reader.commit(n);
    } catch (err) {
      this.protocolFailure(err as Error);
    }
    return true; // keep reading (false would pause the socket)
  }

  private onChunk(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.protocolFailure(err as Error);
    }
  }

  private onEnd(): void {
    if (this.reader.midFrame) return this.protocolFailure(new ProtocolError(this.reader.describeTruncation()));
    if (!this.socket.writableEnded) this.socket.end();
  }

  private protocolFailure(err: Error): void {
    if (this.ended) return;
    const who = this.peerRank >= 0 ? `rank ${this.peerRank} (${this.remote})` : this.remote;
    commLog('warn', `dropping connection from ${who}: ${err.message}`);
    if (err instanceof VersionMismatchError) {
      // Tell the peer why, in our version's framing: it will detect the mismatch too.
      this.refuse(-1, 'VERSION', err.message);
      this.finish(err);
      return;
    }
    this.destroy(err);
  }

  private finish(err: Error | null): void {
    if (this.ended) return;
    this.ended = true;
    this.closedError = err;
    this.reader.release();
    const waiter = this.controlWaiter;
    this.controlWaiter = null;
    if (waiter) waiter(err ?? new SmolError('CLOSED', `connection to ${this.remote} closed`));
    this.emit('closed', err);
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }
}

function describe(socket: net.Socket): string {
  return socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unknown peer';
}
