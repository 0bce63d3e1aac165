/**
 * Client of the rendezvous store. Connecting claims a rank (or gets one assigned with rank -1) and
 * retries until the deadline, since workers may start before the master. Requests may overlap (a
 * blocking wait does not hold up a set); each has a deadline.
 */
import { PeerError, SmolError, TimeoutError } from '../../util/errors.js';
import type { Connection, ConnectionOptions } from '../tcp/connection.js';
import { dialHandshake } from '../tcp/handshake.js';
import { dialWithRetry } from '../tcp/net.js';
import { MessageType, type FrameHeader } from '../wire/frame.js';
import { decodeResponse, encodeMessage, StoreTimeoutError, type StoreRequest, type StoreResponse } from './protocol.js';

export interface StoreClientConfig {
  host: string;
  port: number;
  token: string;
  worldSize: number;
  signature: string;
  /** Rank to claim; -1 asks the store to assign one. */
  rank: number;
  /** Deadline for reaching the store and for each request (ms). */
  timeoutMs?: number;
  connection?: ConnectionOptions;
}

interface Pending {
  op: string;
  resolve: (r: { res: StoreResponse; value: Uint8Array }) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Grace on top of a server-side wait, before the client gives up on a silent server. */
const GRACE_MS = 5000;

export class StoreClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | null = null;

  private constructor(
    private readonly conn: Connection,
    readonly rank: number,
    private readonly timeoutMs: number,
  ) {
    conn.setSink({ target: (h: FrameHeader) => new Uint8Array(h.length), frame: (h, payload) => this.onFrame(h, payload) });
    // The store lives in the process that hosts it (rank 0, the launcher, or `smolcluster store`) and ends with it.
    conn.on('closed', (err: Error | null) => this.fail(new PeerError(-1, conn.remote,
      `the rendezvous store went away (${err ? err.message : 'it closed'}); it runs in the process that hosts it (rank 0, the local launcher, or "smolcluster store") and ended with it`, { cause: err })));
  }

  static async connect(cfg: StoreClientConfig): Promise<StoreClient> {
    const timeoutMs = cfg.timeoutMs ?? 30_000;
    const where = `${cfg.host}:${cfg.port}`;
    const conn = await dialWithRetry({ host: cfg.host, port: cfg.port, rank: -1, what: 'the master (rendezvous store)' }, timeoutMs, cfg.connection);
    const { token, worldSize, signature, rank } = cfg;
    const res = await dialHandshake(conn, { token, worldSize, signature, rank, purpose: 'store', timeoutMs });
    if (rank >= 0 && res.rank !== rank) {
      conn.destroy();
      throw new PeerError(-1, where, `store assigned rank ${res.rank}, expected ${rank}`);
    }
    return new StoreClient(conn, res.rank, timeoutMs);
  }

  /** True once the connection to the store ended (the store went down, or close()). */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Our address on the route to the store: what peers can most likely dial. */
  get localAddress(): string {
    return this.conn.socket.localAddress ?? '127.0.0.1';
  }

  async set(key: string, value: Uint8Array | string): Promise<void> {
    await this.request({ op: 'set', keys: [key] }, bytes(value));
  }

  /** The key's value, waiting until it is set (or the deadline). */
  async get(key: string, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    return (await this.request({ op: 'get', keys: [key], timeoutMs }, undefined, timeoutMs + GRACE_MS)).value;
  }

  /** Waits until every key is set; a StoreTimeoutError lists the missing ones. */
  async wait(keys: string[], timeoutMs = this.timeoutMs): Promise<void> {
    await this.request({ op: 'wait', keys, timeoutMs }, undefined, timeoutMs + GRACE_MS);
  }

  /** Adds delta to an integer counter (absent = 0); returns the new value. */
  async add(key: string, delta = 1): Promise<number> {
    return (await this.request({ op: 'add', keys: [key], delta })).res.num!;
  }

  /** Sets key to desired if it currently equals expected (null: absent); returns the value after. */
  async compareSet(key: string, expected: Uint8Array | string | null, desired: Uint8Array | string): Promise<Uint8Array> {
    const e = expected === null ? new Uint8Array(0) : bytes(expected);
    const d = bytes(desired);
    const value = new Uint8Array(e.length + d.length);
    value.set(e);
    value.set(d, e.length);
    return (await this.request({ op: 'compareSet', keys: [key], expectedLength: expected === null ? -1 : e.length }, value)).value;
  }

  async delete(key: string): Promise<void> {
    await this.request({ op: 'delete', keys: [key] });
  }

  close(): void {
    this.fail(new SmolError('CLOSED', 'store client closed'));
    this.conn.bye(this.rank);
  }

  private request(req: StoreRequest, value?: Uint8Array, deadlineMs = this.timeoutMs): Promise<{ res: StoreResponse; value: Uint8Array }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++ >>> 0;
    const op = `store ${req.op}`;
    const out = new Promise<{ res: StoreResponse; value: Uint8Array }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(op, [], deadlineMs, `no answer from the store at ${this.conn.remote}`));
      }, deadlineMs);
      this.pending.set(id, { op, resolve, reject, timer });
    });
    this.conn.send(MessageType.StoreRequest, this.rank, 0, id, encodeMessage(req, value)).catch(() => {});
    return out.then((r) => {
      if (r.res.ok) return r;
      if (r.res.code === 'TIMEOUT') throw new StoreTimeoutError(op, req.timeoutMs ?? 0, r.res.missing ?? []);
      throw new SmolError(r.res.code ?? 'STORE', `${op}: ${r.res.message ?? 'failed'}`);
    });
  }

  private onFrame(h: FrameHeader, payload: Uint8Array): void {
    if (h.type === MessageType.Bye) return;
    if (h.type !== MessageType.StoreResponse) throw new SmolError('PROTOCOL', `unexpected ${MessageType[h.type]} frame from the store`);
    const p = this.pending.get(h.tag);
    if (!p) return; // answer to a request we stopped waiting for
    this.pending.delete(h.tag);
    clearTimeout(p.timer);
    p.resolve(decodeResponse(payload));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

function bytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}
