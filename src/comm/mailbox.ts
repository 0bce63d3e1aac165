/**
 * Matches incoming messages with posted receives by (peer, tag), for every transport.
 *
 * A message is either expected (a recv was posted first: it lands in that recv's buffer, zero-copy)
 * or unexpected (it lands in a fresh buffer and waits in a queue for its recv). The TCP transport
 * claims a landing place as soon as a frame header arrives (`land`) and reports completion later
 * (`arrived`); the in-process transport does both at once (`deliver`).
 */
import { ProtocolError, TimeoutError } from '../util/errors.js';
import type { Deadline, Waiter } from './deadline.js';
import { DEFAULT_TIMEOUT_MS, type PieceConsumer, type RecvOptions } from './transport.js';

interface PendingRecv extends Waiter {
  peer: number;
  key: number;
  into: Uint8Array | undefined;
  consume: PieceConsumer | undefined;
  resolve: (bytes: Uint8Array) => void;
  reject: (err: Error) => void;
  /** Its own timer, or the collective's deadline (one of the two). */
  timer: NodeJS.Timeout | undefined;
  deadline: Deadline | undefined;
  settled: boolean;
}

/** Where an incoming payload lands, and who gets it when complete. */
export interface Landing {
  buf: Uint8Array;
  /** The recv takes the payload in pieces (RecvOptions.consume): `buf` is empty, hand pieces here. */
  consume?: PieceConsumer;
  recv: PendingRecv | null;
  discard: boolean;
}

interface PeerBox {
  waiting: Map<number, PendingRecv[]>;
  arrived: Map<number, Uint8Array[]>;
  inFlight: Set<PendingRecv>;
  failure: Error | null;
}

/** A fresh, 8-byte aligned buffer of its own (never a slice of Node's shared pool). */
export function allocPayload(length: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
}

export class Mailbox {
  private readonly boxes: PeerBox[];
  private closedWith: Error | null = null;

  constructor(
    size: number,
    private readonly defaultTimeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    this.boxes = Array.from({ length: size }, () => ({ waiting: new Map(), arrived: new Map(), inFlight: new Set(), failure: null }));
  }

  recv(peer: number, key: number, opts: RecvOptions = {}): Promise<Uint8Array> {
    const box = this.boxes[peer];
    const queued = shift(box.arrived, key);
    if (queued) return settleQueued(queued, opts.into, opts.consume, peer, key);
    const failure = this.closedWith ?? box.failure;
    if (failure) return Promise.reject(failure);
    return new Promise<Uint8Array>((resolve, reject) => {
      const r: PendingRecv = {
        peer, key, into: opts.into, consume: opts.consume, resolve, reject, timer: undefined, deadline: opts.deadline, settled: false,
        expire: (err) => this.expire(r, err),
      };
      if (opts.deadline) opts.deadline.track(r);
      else {
        const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
        r.timer = setTimeout(() => this.expire(r, new TimeoutError(opts.op ?? 'recv', [peer], timeoutMs)), timeoutMs);
      }
      push(box.waiting, key, r);
    });
  }

  /** A frame header announced `length` bytes for (peer, key): decide where they go. */
  land(peer: number, key: number, length: number): Landing {
    const box = this.boxes[peer];
    const r = shift(box.waiting, key);
    if (!r) return { buf: allocPayload(length), recv: null, discard: false };
    const expected = r.into?.length ?? r.consume?.bytes;
    if (expected !== undefined && expected !== length) {
      this.settle(r, new ProtocolError(`message size mismatch from rank ${peer}: expected ${expected} bytes, got ${length}`));
      return { buf: allocPayload(length), recv: null, discard: true };
    }
    box.inFlight.add(r);
    if (r.consume) return { buf: EMPTY, consume: r.consume, recv: r, discard: false };
    return { buf: r.into ?? allocPayload(length), recv: r, discard: false };
  }

  /** The payload announced by `land` is complete. */
  arrived(peer: number, key: number, landing: Landing): void {
    if (landing.discard) return;
    const r = landing.recv;
    if (!r) {
      // A recv may have been posted while this payload was still streaming in: hand it over now,
      // or the message would sit in the queue while its recv waits (a deadlock).
      const late = shift(this.boxes[peer].waiting, key);
      if (late) this.settleLate(late, landing.buf, peer, key);
      else push(this.boxes[peer].arrived, key, landing.buf);
      return;
    }
    this.boxes[peer].inFlight.delete(r);
    this.settle(r, null, landing.buf);
  }

  /** Whole-message delivery (in-process transport): the bytes are ours to keep. */
  deliver(peer: number, key: number, bytes: Uint8Array): void {
    const landing = this.land(peer, key, bytes.length);
    if (landing.recv && landing.buf !== bytes) landing.buf.set(bytes);
    else if (!landing.recv) landing.buf = bytes;
    this.arrived(peer, key, landing);
  }

  /** The peer is gone: fail what waits on it now, and every later recv (queued messages still count). */
  failPeer(peer: number, err: Error): void {
    const box = this.boxes[peer];
    if (!box.failure) box.failure = err;
    for (const list of box.waiting.values()) for (const r of list) this.settle(r, err);
    box.waiting.clear();
    for (const r of box.inFlight) this.settle(r, err);
    box.inFlight.clear();
  }

  /**
   * The peer came back on a new connection (a re-admitted worker, a restarted server): what waited
   * on the old one fails with `err`, and the peer starts over with an empty box.
   */
  resetPeer(peer: number, err: Error): void {
    this.failPeer(peer, err);
    this.boxes[peer] = { waiting: new Map(), arrived: new Map(), inFlight: new Set(), failure: null };
  }

  /** Whether a recv from `peer` is posted and not yet complete. */
  awaiting(peer: number): boolean {
    const box = this.boxes[peer];
    return box.waiting.size > 0 || box.inFlight.size > 0;
  }

  peerFailure(peer: number): Error | null {
    return this.closedWith ?? this.boxes[peer].failure;
  }

  close(err: Error): void {
    this.closedWith ??= err;
    for (let p = 0; p < this.boxes.length; p++) this.failPeer(p, err);
  }

  private expire(r: PendingRecv, err: TimeoutError): void {
    const box = this.boxes[r.peer];
    const list = box.waiting.get(r.key);
    if (list) {
      const i = list.indexOf(r);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) box.waiting.delete(r.key);
    }
    box.inFlight.delete(r);
    this.settle(r, err);
  }

  /** Completes a recv posted after its message had started arriving (copied into `into` if given). */
  private settleLate(r: PendingRecv, bytes: Uint8Array, peer: number, key: number): void {
    settleQueued(bytes, r.into, r.consume, peer, key).then(
      (b) => this.settle(r, null, b),
      (err: Error) => this.settle(r, err),
    );
  }

  private settle(r: PendingRecv, err: Error | null, bytes?: Uint8Array): void {
    if (r.settled) return;
    r.settled = true;
    if (r.timer) clearTimeout(r.timer);
    r.deadline?.untrack(r);
    if (err) r.reject(err);
    else r.resolve(bytes!);
  }
}

const EMPTY = new Uint8Array(0);

function settleQueued(bytes: Uint8Array, into: Uint8Array | undefined, consume: PieceConsumer | undefined, peer: number, key: number): Promise<Uint8Array> {
  const expected = into?.length ?? consume?.bytes;
  if (expected === undefined) return Promise.resolve(bytes);
  if (expected !== bytes.length) {
    return Promise.reject(new ProtocolError(`message size mismatch from rank ${peer} (tag ${key}): expected ${expected} bytes, got ${bytes.length}`));
  }
  if (consume) {
    consume.piece(bytes, 0);
    return Promise.resolve(EMPTY);
  }
  into!.set(bytes);
  return Promise.resolve(into!);
}

function push<T>(m: Map<number, T[]>, key: number, value: T): void {
  const list = m.get(key);
  if (list) list.push(value);
  else m.set(key, [value]);
}

function shift<T>(m: Map<number, T[]>, key: number): T | undefined {
  const list = m.get(key);
  if (!list) return undefined;
  const v = list.shift();
  if (list.length === 0) m.delete(key);
  return v;
}
