/**
 * The transport contract every collective is written against (after MLX's and Gloo's: point-to-point
 * byte messages between ranks, nothing else).
 *
 * - `send(peer, tag, payload, opts)` queues the bytes for `peer` and resolves once they have been
 *   handed to the operating system. The payload is NOT copied: do not modify it until the promise
 *   resolves. A peer that stops reading makes it fail with a TimeoutError after `opts.timeoutMs`.
 * - `recv(peer, tag, opts)` resolves with the next message from `peer` carrying `tag`. Messages with
 *   different tags may arrive in any order; the same (peer, tag) pair is FIFO. With `opts.into`, the
 *   payload is written there (its length must match) and `into` is returned — a TCP transport reads
 *   straight into it when the recv is posted before the bytes arrive.
 * - A tag is an integer in [0, 2^53). Collectives use (op sequence number) * 2^32 + (message index);
 *   tag_space.ts has the whole layout (point-to-point, sub-groups).
 * - A peer that disconnects fails every pending and future op on it at once with a PeerError (after
 *   any messages it already delivered); a recv whose deadline passes fails with a TimeoutError.
 * - 'peerLost' (rank, error) is emitted once when a peer drops unexpectedly.
 */
import type { PeerError } from '../util/errors.js';
import type { Deadline } from './deadline.js';

export interface SendOptions {
  /** Deadline for handing the bytes to the OS (a peer that stops reading fills its buffers). */
  timeoutMs?: number;
  /** Operation name used in the TimeoutError. */
  op?: string;
  /** Left out of bytesSent: side traffic (the metric stream to rank 0), not the training's exchange. */
  uncounted?: boolean;
  /** The collective's one deadline (deadline.ts), instead of a timer of this message's own; overrides timeoutMs. */
  deadline?: Deadline;
}

export interface RecvOptions {
  /** Deadline for this message; default: the transport's default. */
  timeoutMs?: number;
  /** Destination for the payload (exact length); the returned buffer is `into` itself. */
  into?: Uint8Array;
  /** Operation name used in the TimeoutError (e.g. 'allreduce'). */
  op?: string;
  /** The collective's one deadline (deadline.ts), instead of a timer of this message's own; overrides timeoutMs. */
  deadline?: Deadline;
  /**
   * Hand the payload over in pieces instead of storing it (best where `consumesPiecesFrom(peer)`): `piece` is
   * called in order with each piece and its byte offset; its bytes are valid only during the call.
   * The recv resolves with an empty array. `bytes` is the expected length, checked like `into`'s.
   */
  consume?: PieceConsumer;
}

export interface PieceConsumer {
  bytes: number;
  piece(bytes: Uint8Array, offset: number): void;
}

export interface Transport {
  readonly rank: number;
  readonly size: number;
  send(peer: number, tag: number, payload: Uint8Array, opts?: SendOptions): Promise<void>;
  recv(peer: number, tag: number, opts?: RecvOptions): Promise<Uint8Array>;
  /** Whether a recv from `peer` takes `consume` without landing the payload first (shared memory: a sum straight out of the ring, one copy fewer). */
  consumesPiecesFrom?(peer: number): boolean;
  /** Bytes this rank has handed to the wire so far (what a step sent is the difference), if the transport counts. */
  readonly bytesSent?: number;
  /** High words of the tag space this transport carries (a sub-group's view: its share of its parent's); default 2^21 (tag_space.ts). */
  readonly tagHiWords?: number;
  /** Human-readable address of a peer, for error messages ("127.0.0.1:40123"). */
  peerHost(peer: number): string;
  on(event: 'peerLost', listener: (rank: number, error: PeerError) => void): this;
  off(event: 'peerLost', listener: (rank: number, error: PeerError) => void): this;
  /** Says goodbye to every peer and releases sockets; pending ops fail. */
  close(): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
/** Tags stay exact integers in JavaScript numbers (tag_space.ts). */
export const MAX_TAG = 2 ** 53;

/** A byte view over any typed array's memory (no copy). */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A Float32Array over a byte buffer: a view when 4-byte aligned, else a copy. */
export function floatsOf(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  return new Float32Array(bytes.slice().buffer, 0, Math.floor(bytes.byteLength / 4));
}

export function checkPeer(t: { rank: number; size: number }, peer: number): void {
  if (!Number.isInteger(peer) || peer < 0 || peer >= t.size || peer === t.rank) {
    throw new RangeError(`invalid peer rank ${peer} (this is rank ${t.rank} of ${t.size})`);
  }
}

export function checkTag(tag: number): void {
  if (!Number.isInteger(tag) || tag < 0 || tag >= MAX_TAG) throw new RangeError(`invalid tag ${tag}`);
}
