/**
 * The shared-memory transport: data messages to ranks on the same host go through their inbox segment
 * (ring.ts) instead of a socket; everything else — peers on other hosts, the control plane, loss
 * detection — stays on the TCP transport it wraps. A send copies the payload into the peer's ring
 * (no system call unless the ring was full) and rings its doorbell; one pump per process sleeps on
 * its own doorbell (a futex, off the event loop, src/native/shm.cc), drains its inbound rings into the
 * mailbox — straight into the receiver's buffer when the recv was posted first — and resumes sends
 * that waited for space.
 *
 * Failure: a peer whose TCP connection drops is lost for shared memory too (its pending sends and
 * recvs fail with the PeerError); every wait has the collective's deadline, whose TimeoutError names
 * the rank that did not write (recv) or did not read (send). A corrupt ring fails the peer.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { PeerError, ProtocolError, SmolError, TimeoutError } from '../../util/errors.js';
import type { Waiter } from '../deadline.js';
import { Mailbox, type Landing } from '../mailbox.js';
import type { TcpTransport } from '../tcp/transport.js';
import { checkPeer, checkTag, DEFAULT_TIMEOUT_MS, type PieceConsumer, type RecvOptions, type SendOptions, type Transport } from '../transport.js';
import type { ShmNative } from './native.js';
import { HEADER_BYTES, MAGIC, pad16, type Inbox, type Ring } from './ring.js';
import { SpinBudget } from './spin.js';

const TAG_HI = 0x1_0000_0000;
/** How long the pump sleeps before looking again with nothing rung (also how fast close() is noticed). */
const IDLE_WAIT_MS = 200;
/** One blocking wait on the doorbell in busy mode; the event loop gets a turn between them. */
const BUSY_WAIT_US = 1000;
/** SMOLCLUSTER_SHM_SPIN=0: busy mode never spins before it sleeps (spin.ts). */
export const SPIN_ENV = 'SMOLCLUSTER_SHM_SPIN';
/** ShmTransports alive in this process: busy mode blocks the thread, so only a process with one uses it (tests build several). */
let liveTransports = 0;

interface PendingSend {
  payload: Uint8Array;
  tagHi: number;
  tagLo: number;
  /** Bytes of the padded payload written; -1 while the header is not. */
  done: number;
  finish(err: Error | null): void;
}

interface Incoming {
  key: number;
  length: number;
  done: number;
  landing: Landing;
}

interface ShmPeer {
  /** The peer's inbox, where we write (ring `rank`). */
  inbox: Inbox;
  out: Ring;
  /** Our inbox's ring from the peer. */
  in: Ring;
  queue: PendingSend[];
  incoming: Incoming | null;
}

export class ShmTransport extends EventEmitter implements Transport {
  readonly rank: number;
  readonly size: number;
  private readonly mailbox: Mailbox;
  private readonly peers: Array<ShmPeer | null>;
  private shmBytesSent = 0;
  private closed = false;
  private pumping: Promise<void> | null = null;
  private poolWait: Promise<void> | null = null;
  private poolWaitBell = 0;
  private unpark: (() => void) | null = null;
  /**
   * How the pump waits while a message is due, changeable between operations (for A/B runs): on the
   * event-loop thread (busy) or parked on the pool. Busy only when every peer is reached through shared
   * memory (a TCP peer's socket events would wait for the slice to end) and every rank can have a core
   * (with 4 ranks on 2 cores it made 16-64 MB all-reduces 1.5-2.4x slower in one window: docs/ALGORITHMS.md).
   */
  readonly tuning = { busyWaits: true, spins: process.env[SPIN_ENV] !== '0' };
  /** How long busy mode spins before it sleeps, while `tuning.spins` (spin.ts). */
  private readonly spin = new SpinBudget();

  constructor(
    private readonly tcp: TcpTransport,
    private readonly native: ShmNative,
    private readonly own: Inbox,
    peerInboxes: Array<Inbox | null>,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    super();
    this.rank = tcp.rank;
    this.size = tcp.size;
    this.mailbox = new Mailbox(this.size, timeoutMs);
    this.peers = peerInboxes.map((inbox, p) => (inbox && p !== this.rank ? { inbox, out: inbox.ringFrom(this.rank), in: own.ringFrom(p), queue: [], incoming: null } : null));
    tcp.on('peerLost', (peer: number, err: PeerError) => {
      this.failPeer(peer, err);
      this.emit('peerLost', peer, err);
    });
    // Every peer shared (TCP peers' events would wait up to a slice), and every local rank has a core.
    this.tuning.busyWaits = this.sharedPeers.length === this.size - 1 && this.size <= os.availableParallelism();
    liveTransports++;
    this.pumping = this.pump().finally(() => liveTransports--);
  }

  /** Busy mode only in a process with one transport: blocking the thread would stall another in the same process. */
  private get busyWaits(): boolean {
    return liveTransports === 1 && this.tuning.busyWaits;
  }

  /** Receives from shared-memory peers hand RecvOptions.consume views into the ring; TCP peers' messages land whole first. */
  consumesPiecesFrom(peer: number): boolean {
    return this.peers[peer] !== null && this.peers[peer] !== undefined;
  }

  /** Ranks reached through shared memory. */
  get sharedPeers(): number[] {
    return this.peers.flatMap((p, r) => (p ? [r] : []));
  }

  get bytesSent(): number {
    return this.tcp.bytesSent + this.shmBytesSent;
  }

  peerHost(peer: number): string {
    return this.tcp.peerHost(peer);
  }

  send(peer: number, tag: number, payload: Uint8Array, opts: SendOptions = {}): Promise<void> {
    const link = this.peers[peer];
    if (!link) return this.tcp.send(peer, tag, payload, opts);
    checkPeer(this, peer);
    checkTag(tag);
    if (payload.length > 0xffff_ffff) return Promise.reject(new RangeError(`message of ${payload.length} bytes to rank ${peer} exceeds the 4 GiB limit`));
    const failure = this.mailbox.peerFailure(peer);
    if (failure) return Promise.reject(failure);
    if (!opts.uncounted) this.shmBytesSent += HEADER_BYTES + payload.length;
    return new Promise<void>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
      const deadline = opts.deadline;
      let settled = false;
      let timer: NodeJS.Timeout | null = null;
      let waiter: Waiter | null = null;
      const finish = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        if (waiter) deadline?.untrack(waiter);
        if (err) {
          const i = link.queue.indexOf(pending);
          // A message half in the ring cannot be taken back: the peer's stream is broken, fail it.
          if (i === 0 && pending.done >= 0) this.failPeer(peer, new PeerError(peer, this.peerHost(peer), `a message to it was cut short (${err.message})`));
          else if (i >= 0) link.queue.splice(i, 1);
          reject(err);
        } else resolve();
      };
      const pending: PendingSend = { payload, tagHi: Math.floor(tag / TAG_HI), tagLo: tag % TAG_HI, done: -1, finish };
      link.queue.push(pending);
      // Usually the ring has room and the message is copied now; else the pump resumes it as space frees.
      if (link.queue.length === 1 && this.flush(peer, link)) return;
      if (settled) return;
      this.kick();
      if (deadline) {
        waiter = { peer, expire: finish };
        deadline.track(waiter);
      } else timer = setTimeout(() => finish(new TimeoutError(opts.op ?? 'send', [peer], timeoutMs, 'it is not reading')), timeoutMs);
    });
  }

  recv(peer: number, tag: number, opts?: RecvOptions): Promise<Uint8Array> {
    if (!this.peers[peer]) return opts?.consume ? recvWhole(this.tcp, peer, tag, opts, opts.consume) : this.tcp.recv(peer, tag, opts);
    checkPeer(this, peer);
    checkTag(tag);
    const got = this.mailbox.recv(peer, tag, opts);
    this.kick();
    return got;
  }

  /** Stops the pump, fails what waits, and closes the TCP transport (goodbyes to every peer). */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const err = new SmolError('CLOSED', `rank ${this.rank}: transport closed`);
      this.mailbox.close(err);
      for (const link of this.peers) if (link) for (const s of [...link.queue]) s.finish(err);
      this.own.ring();
      this.native.futexWake(this.own.flags, 0);
      this.unpark?.();
    }
    await this.pumping;
    await this.tcp.close();
  }

  // The TCP transport's recovery surface (comm/hub.ts, train/strategies/param_server.ts): a peer that is
  // disconnected or replaced talks TCP from then on.
  disconnect(peer: number, reason: Error): void {
    this.dropShared(peer, reason);
    this.tcp.disconnect(peer, reason);
  }

  isConnected(peer: number): boolean {
    return this.tcp.isConnected(peer) && !this.mailbox.peerFailure(peer);
  }

  /** Crash simulation for tests: drops the sockets and stops the pump without a goodbye. */
  abort(): void {
    this.closed = true;
    this.mailbox.close(new SmolError('CLOSED', `rank ${this.rank}: transport aborted`));
    this.native.futexWake(this.own.flags, 0);
    this.unpark?.();
    this.tcp.abort();
  }

  /** Sends queued for `peer` as far as its ring allows; true once the queue is empty. */
  private flush(peer: number, link: ShmPeer): boolean {
    let wrote = false;
    while (link.queue.length > 0) {
      const s = link.queue[0];
      if (s.done < 0) {
        if (link.out.writable() < HEADER_BYTES) break;
        link.out.writeHeader(s.tagHi, s.tagLo, s.payload.length);
        s.done = 0;
        wrote = true;
      }
      const total = pad16(s.payload.length);
      const count = Math.min(total - s.done, link.out.writable());
      if (count > 0) {
        link.out.writePiece(s.payload, s.done, count);
        s.done += count;
        wrote = true;
      }
      if (s.done < total) break;
      link.queue.shift();
      s.finish(null);
    }
    if (wrote) this.ringPeer(link);
    return link.queue.length === 0;
  }

  /** Takes what the peer wrote into our ring; true if anything was read. */
  private drain(peer: number, link: ShmPeer): boolean {
    let read = false;
    for (;;) {
      if (!link.incoming) {
        if (link.in.readable() < HEADER_BYTES) break;
        const h = link.in.peekHeader();
        if (h[0] !== MAGIC) {
          this.failPeer(peer, new PeerError(peer, this.peerHost(peer), 'corrupt shared-memory ring (bad message header)', { cause: new ProtocolError('bad magic') }));
          return read;
        }
        const key = h[1] * TAG_HI + h[2];
        const length = h[3];
        link.in.skipHeader();
        link.incoming = { key, length, done: 0, landing: this.mailbox.land(peer, key, length) };
        read = true;
      }
      const m = link.incoming;
      const total = pad16(m.length);
      const count = Math.min(total - m.done, link.in.readable());
      if (count > 0) {
        const consume = m.landing.consume;
        if (consume) link.in.consumePiece(m.length, m.done, count, (bytes, offset) => consume.piece(bytes, offset));
        else link.in.readPiece(m.landing.buf, m.done, count);
        m.done += count;
        read = true;
      }
      if (m.done < total) break;
      link.incoming = null;
      this.mailbox.arrived(peer, m.key, m.landing);
    }
    // Space freed: a writer waiting for it looks again. In an exchange the writer usually waits for our
    // reply instead, and this wakes it early (its wake-up overlaps our send; ringing only a writer that
    // waits for space made 2-rank 64 KiB all-reduces 2-4x slower: docs/ALGORITHMS.md).
    if (read) this.ringPeer(link);
    return read;
  }

  private ringPeer(link: ShmPeer): void {
    if (link.inbox.ring()) this.native.futexWake(link.inbox.flags, 0);
  }

  /**
   * Moves messages until closed. While a message is due (a recv posted, a send waiting for space) the
   * pump waits on this thread in short slices (busy mode: it spins while that pays, else the peer's
   * wake reaches us directly; the event loop gets a turn between slices); when nothing is due it parks
   * on the libuv pool, off the event loop, until the doorbell rings or a send or recv kicks it into busy mode.
   */
  private async pump(): Promise<void> {
    let yielded = false;
    while (!this.closed) {
      const bell = this.own.bell();
      if (this.scan()) {
        yielded = false;
        continue;
      }
      // Before any wait, let what just settled run (the caller's next send or recv comes from there).
      if (!yielded) {
        yielded = true;
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      yielded = false;
      if (this.busyWaits && this.expecting()) {
        this.waitHere(bell);
      } else await this.park(bell);
    }
  }

  /**
   * Busy mode's wait for the doorbell to move from `bell`: spin while that has been paying (spin.ts),
   * then sleep on the futex for at most a slice. Either way on this thread, so the event loop is blocked
   * for at most BUSY_WAIT_US.
   */
  private waitHere(bell: number): void {
    const t0 = performance.now();
    const budget = this.tuning.spins ? this.spin.at(t0) : 0;
    const caught = budget > 0 && this.native.spinWait(this.own.flags, 0, bell, budget);
    if (!caught) {
      this.own.setAsleep(true);
      if (this.own.bell() === bell) this.native.futexWaitSync(this.own.flags, 0, bell, BUSY_WAIT_US);
      this.wakeUp();
    }
    if (this.tuning.spins) {
      const t1 = performance.now();
      this.spin.record(t1, (t1 - t0) * 1000, budget, caught);
    }
  }

  /** One pass over every shared-memory peer: drain its ring, resume our sends to it; true if anything moved. */
  private scan(): boolean {
    let progressed = false;
    for (let p = 0; p < this.size; p++) {
      const link = this.peers[p];
      if (!link || this.mailbox.peerFailure(p)) continue;
      if (this.drain(p, link)) progressed = true;
      // A peer that said goodbye on TCP (no 'peerLost' for that) has left shared memory too.
      if (!this.tcp.isConnected(p)) this.failPeer(p, new PeerError(p, this.peerHost(p), 'left the group (closed its transport)'));
      if (link.queue.length > 0 && link.queue[0].done < pad16(link.queue[0].payload.length)) {
        const before = link.queue.length;
        this.flush(p, link);
        if (link.queue.length !== before) progressed = true;
      }
    }
    return progressed;
  }

  /** Whether a message from or to a shared-memory peer is due: a posted recv, a half-read message, a queued send. */
  private expecting(): boolean {
    for (let p = 0; p < this.size; p++) {
      const link = this.peers[p];
      if (!link || this.mailbox.peerFailure(p)) continue;
      if (link.queue.length > 0 || link.incoming || this.mailbox.awaiting(p)) return true;
    }
    return false;
  }

  /**
   * Waits off the event loop for the doorbell to move from `bell` (IDLE_WAIT_MS at most) or for a kick.
   * A wait that a kick cut short stays on its pool thread until the doorbell next moves; meanwhile
   * the asleep flag stays set (wakeUp), so the next ring wakes that thread, and the next park reuses
   * it rather than taking another.
   */
  private async park(bell: number): Promise<void> {
    this.own.setAsleep(true);
    if (this.poolWait && this.poolWaitBell !== bell) await this.poolWait; // rung since: it is returning
    if (!this.poolWait) {
      this.poolWaitBell = bell;
      const wait = this.native.futexWait(this.own.flags, 0, bell, IDLE_WAIT_MS).then(() => {
        if (this.poolWait === wait) this.poolWait = null;
      });
      this.poolWait = wait;
    }
    const kicked = new Promise<void>((resolve) => (this.unpark = resolve));
    if (this.own.bell() === bell && !this.closed) await Promise.race([this.poolWait, kicked]);
    this.unpark = null;
    this.wakeUp();
  }

  /** Awake on the event loop; ringers still wake us while a pool wait is out, so that it returns. */
  private wakeUp(): void {
    this.own.setAsleep(this.poolWait !== null);
  }

  /** A send or recv on a shared-memory peer: a parked pump switches to busy mode now. */
  private kick(): void {
    const unpark = this.unpark;
    if (!unpark || !this.busyWaits || this.closed) return;
    this.unpark = null;
    unpark();
  }

  private failPeer(peer: number, err: Error): void {
    const link = this.peers[peer];
    if (!link || this.mailbox.peerFailure(peer)) return;
    this.mailbox.failPeer(peer, err);
    for (const s of [...link.queue]) s.finish(err);
    link.queue.length = 0;
  }

  private dropShared(peer: number, err: Error): void {
    this.failPeer(peer, err);
    this.peers[peer] = null;
  }
}

/** A TCP peer of a transport that consumes pieces: land the message whole, then hand it over as one piece. */
async function recvWhole(tcp: TcpTransport, peer: number, tag: number, opts: RecvOptions, consume: PieceConsumer): Promise<Uint8Array> {
  const bytes = await tcp.recv(peer, tag, { ...opts, consume: undefined });
  if (bytes.length !== consume.bytes) throw new ProtocolError(`message size mismatch from rank ${peer}: expected ${consume.bytes} bytes, got ${bytes.length}`);
  consume.piece(bytes, 0);
  return new Uint8Array(0);
}
