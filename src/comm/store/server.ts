/**
 * The rendezvous store (like torch's TCPStore): a key-value map of byte values held by rank 0 or by
 * the launcher, reached over the same frames and the same authenticated handshake as the data plane.
 *
 * It also keeps the roll of ranks: each client claims a rank (or asks for one, rank -1) in its
 * HELLO; a rank already held is refused. A client that disconnects gives its rank back.
 * Ops: set, get (waits for the key), wait (for all keys), add (counter), compareSet, delete.
 * A misbehaving client is dropped (and logged); the others are served on.
 *
 * Bounds, so one client cannot take the master down: a rank writes only its own keys and the
 * shared ones (keys.ts); the store holds at most `maxKeys` keys and `maxBytes` of keys and values
 * (a write past either is refused, STORE_FULL); a get/wait is held at most `maxWaitMs` and each
 * client at most `maxWaiters` of them at once; a client's waits end with its connection.
 */
import type net from 'node:net';
import { ProtocolError } from '../../util/errors.js';
import { commLog } from '../log.js';
import { Connection, type ConnectionOptions } from '../tcp/connection.js';
import { acceptHandshake, isMismatch, logRefused, PendingHandshakes, type RefusalError } from '../tcp/handshake.js';
import { boundPort, listen } from '../tcp/net.js';
import type { Refusal } from '../wire/control.js';
import { MessageType, type FrameHeader } from '../wire/frame.js';
import { writeRefusal } from './keys.js';
import { decodeRequest, encodeMessage, type StoreOp, type StoreRequest, type StoreResponse } from './protocol.js';

const WRITES: ReadonlySet<StoreOp> = new Set(['set', 'delete', 'add', 'compareSet']);

export interface StoreServerConfig {
  host: string;
  /** 0 = any free port. */
  port: number;
  token: string;
  worldSize: number;
  signature: string;
  /** Handshake deadline (ms). */
  timeoutMs?: number;
  connection?: ConnectionOptions;
  limits?: Partial<StoreLimits>;
  /**
   * The lowest rank handed to a client that asks for one (rank -1). A store hosted by rank 0
   * passes 1: a worker that discovered it must not take rank 0 before rank 0's own client claims it.
   */
  firstAssigned?: number;
}

export interface StoreLimits {
  maxKeys: number;
  /** Bytes of keys (UTF-16 length) and values together. */
  maxBytes: number;
  maxWaitMs: number;
  maxWaiters: number;
}

export const STORE_LIMITS: StoreLimits = { maxKeys: 10_000, maxBytes: 64 << 20, maxWaitMs: 10 * 60_000, maxWaiters: 1024 };

interface Waiter {
  keys: string[];
  owner: Connection;
  done: (missing: string[] | null) => void;
  /** Drops the waiter without answering (its client is gone). */
  cancel: () => void;
}

export class StoreServer {
  private readonly data = new Map<string, Uint8Array>();
  private bytes = 0;
  private readonly limits: StoreLimits;
  private readonly waiters = new Set<Waiter>();
  private readonly holders = new Map<number, Connection>();
  private readonly clients = new Set<Connection>();
  private readonly pending = new PendingHandshakes();

  private constructor(
    private readonly cfg: StoreServerConfig,
    private server: net.Server | null = null,
  ) {
    this.limits = { ...STORE_LIMITS, ...cfg.limits };
  }

  /** Keys held and their bytes (keys and values). */
  get usage(): { keys: number; bytes: number; waiters: number } {
    return { keys: this.data.size, bytes: this.bytes, waiters: this.waiters.size };
  }

  static async start(cfg: StoreServerConfig): Promise<StoreServer> {
    const s = new StoreServer(cfg);
    s.server = await listen(cfg.host, cfg.port, (socket) => s.onSocket(socket));
    return s;
  }

  get port(): number {
    return boundPort(this.server!);
  }

  /** Authenticated clients connected now. */
  get connected(): number {
    return this.clients.size;
  }

  /** Whether a key is set (a process hosting the store reads it without being a client). */
  has(key: string): boolean {
    return this.data.has(key);
  }

  /** Ranks currently held by connected clients. */
  get ranks(): number[] {
    return [...this.holders.keys()].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    for (const w of this.waiters) w.done(w.keys.filter((k) => !this.data.has(k)));
    this.waiters.clear();
    for (const c of this.clients) c.bye(-1);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private onSocket(socket: net.Socket): void {
    const conn = Connection.accept(socket, this.cfg.connection);
    const { token, worldSize, signature } = this.cfg;
    const hs = { token, worldSize, signature, purpose: 'store' as const, rank: -1, timeoutMs: this.cfg.timeoutMs ?? 30_000 };
    acceptHandshake(conn, hs, (hello) => this.admit(hello.rank, conn), this.pending)
      .then(({ rank }) => this.serve(conn, rank))
      .catch((err: Error) => {
        this.release(conn);
        logRefused('store refused a client', err);
        if (isMismatch(err)) for (const l of this.mismatchListeners) l(err);
      });
  }

  private readonly mismatchListeners = new Set<(err: RefusalError) => void>();

  /** Told of each peer refused for its settings (token, protocol, world size, signature): a rank waiting for it waits in vain. */
  onMismatch(listener: (err: RefusalError) => void): () => void {
    this.mismatchListeners.add(listener);
    return () => this.mismatchListeners.delete(listener);
  }

  /** Checks or assigns the client's rank; the rank is held from now on (so duplicates are refused). */
  private admit(rank: number, conn: Connection): number | Refusal {
    const n = this.cfg.worldSize;
    if (rank >= n) return { code: 'BAD_RANK', message: `rank ${rank} is out of range for world size ${n}` };
    if (rank < 0) {
      for (let r = this.cfg.firstAssigned ?? 0; r < n; r++) if (!this.holders.has(r)) return this.hold(r, conn);
      return { code: 'WORLD_FULL', message: `all ${n} ranks are taken` };
    }
    const holder = this.holders.get(rank);
    if (holder) return { code: 'DUPLICATE_RANK', message: `rank ${rank} is already taken by ${holder.remote}` };
    return this.hold(rank, conn);
  }

  private hold(rank: number, conn: Connection): number {
    this.holders.set(rank, conn);
    conn.peerRank = rank;
    return rank;
  }

  private release(conn: Connection): void {
    this.clients.delete(conn);
    if (conn.peerRank >= 0 && this.holders.get(conn.peerRank) === conn) this.holders.delete(conn.peerRank);
  }

  private serve(conn: Connection, rank: number): void {
    this.clients.add(conn);
    conn.on('closed', (err: Error | null) => {
      this.release(conn);
      for (const w of [...this.waiters]) if (w.owner === conn) w.cancel();
      if (err) commLog('debug', `store client rank ${rank} (${conn.remote}) dropped: ${err.message}`);
    });
    if (!conn.isOpen) this.release(conn);
    conn.setSink({
      target: (h: FrameHeader) => new Uint8Array(h.length),
      frame: (h: FrameHeader, payload: Uint8Array) => {
        if (h.type === MessageType.Bye) return;
        if (h.type !== MessageType.StoreRequest) throw new ProtocolError(`unexpected ${MessageType[h.type]} frame on a store connection`);
        const { req, value } = decodeRequest(payload);
        this.handle(req, value, conn, (res, out) => {
          if (conn.isOpen) conn.send(MessageType.StoreResponse, -1, h.seq, h.tag, encodeMessage(res, out)).catch(() => {});
        });
      },
    });
  }

  private handle(req: StoreRequest, value: Uint8Array, conn: Connection, reply: (res: StoreResponse, value?: Uint8Array) => void): void {
    const key = req.keys[0];
    if (WRITES.has(req.op)) {
      const refusal = writeRefusal(key, conn.peerRank);
      if (refusal) return reply({ ok: false, code: 'NOT_OWNER', message: refusal });
    }
    switch (req.op) {
      case 'set':
        return this.put(key, value.slice(), reply);
      case 'delete':
        this.remove(key);
        return reply({ ok: true });
      case 'add': {
        const next = Number(this.text(key) ?? '0') + (req.delta ?? 1);
        return this.put(key, Buffer.from(String(next)), (res) => reply(res.ok ? { ok: true, num: next } : res));
      }
      case 'compareSet':
        return this.compareSet(key, value, req.expectedLength ?? -1, reply);
      case 'get':
      case 'wait': {
        const mine = [...this.waiters].filter((w) => w.owner === conn).length;
        if (mine >= this.limits.maxWaiters) return reply({ ok: false, code: 'STORE_BUSY', message: `more than ${this.limits.maxWaiters} waits pending from one client` });
        const timeoutMs = Math.min(this.limits.maxWaitMs, Math.max(0, req.timeoutMs ?? 30_000));
        return this.whenPresent(req.keys, timeoutMs, conn, (missing) => {
          if (missing) reply({ ok: false, code: 'TIMEOUT', message: `keys never set: ${missing.join(', ')}`, missing });
          else reply({ ok: true }, req.op === 'get' ? this.data.get(key) : undefined);
        });
      }
    }
  }

  /** Sets key to desired if its current value equals expected (-1: absent); replies with the value after. */
  private compareSet(key: string, value: Uint8Array, expectedLength: number, reply: (res: StoreResponse, value?: Uint8Array) => void): void {
    const current = this.data.get(key);
    const expected = expectedLength < 0 ? undefined : value.subarray(0, expectedLength);
    const desired = value.subarray(Math.max(0, expectedLength));
    const matches = expected === undefined ? current === undefined : current !== undefined && Buffer.compare(current, expected) === 0;
    if (!matches) return reply({ ok: true }, current ?? new Uint8Array(0));
    this.put(key, desired.slice(), (res) => reply(res, res.ok ? this.data.get(key) : undefined));
  }

  /** Stores a value unless the store would grow past its limits. */
  private put(key: string, value: Uint8Array, reply: (res: StoreResponse) => void): void {
    const old = this.data.get(key);
    const bytes = this.bytes - (old ? old.length + key.length : 0) + value.length + key.length;
    if (!old && this.data.size >= this.limits.maxKeys) {
      return reply({ ok: false, code: 'STORE_FULL', message: `the store holds its limit of ${this.limits.maxKeys} keys; "${key}" was not set` });
    }
    if (bytes > this.limits.maxBytes) {
      return reply({ ok: false, code: 'STORE_FULL', message: `setting "${key}" would take the store past its limit of ${this.limits.maxBytes} bytes` });
    }
    this.data.set(key, value);
    this.bytes = bytes;
    for (const w of [...this.waiters]) if (w.keys.every((k) => this.data.has(k))) w.done(null);
    reply({ ok: true });
  }

  private remove(key: string): void {
    const old = this.data.get(key);
    if (!old) return;
    this.data.delete(key);
    this.bytes -= old.length + key.length;
  }

  private text(key: string): string | undefined {
    const v = this.data.get(key);
    return v === undefined ? undefined : Buffer.from(v).toString('utf8');
  }

  private whenPresent(keys: string[], timeoutMs: number, owner: Connection, done: (missing: string[] | null) => void): void {
    if (keys.every((k) => this.data.has(k))) return done(null);
    const w: Waiter = {
      keys,
      owner,
      done: (missing) => {
        w.cancel();
        done(missing);
      },
      cancel: () => {
        clearTimeout(timer);
        this.waiters.delete(w);
      },
    };
    const timer = setTimeout(() => w.done(keys.filter((k) => !this.data.has(k))), timeoutMs);
    this.waiters.add(w);
  }
}
