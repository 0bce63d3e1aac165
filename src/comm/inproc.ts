/**
 * In-process transport: N ranks in one JavaScript process, for unit tests and for trying algorithms
 * without sockets. Same contract as TCP: payloads are copied at send (so the sender may reuse its
 * buffer at once) and delivered on a later turn of the event loop, never synchronously.
 * `kill()` simulates a crashed process, `close()` a clean exit.
 */
import { EventEmitter } from 'node:events';
import { PeerError, SmolError } from '../util/errors.js';
import { Mailbox } from './mailbox.js';
import { checkPeer, checkTag, DEFAULT_TIMEOUT_MS, type RecvOptions, type SendOptions, type Transport } from './transport.js';

interface Hub {
  members: InProcessTransport[];
}

export interface InProcessOptions {
  timeoutMs?: number;
}

export class InProcessTransport extends EventEmitter implements Transport {
  /** Payload bytes sent (no framing here). */
  bytesSent = 0;
  /** @internal */
  readonly mailbox: Mailbox;
  private alive = true;

  /** @internal createInProcessTransports makes them. */
  constructor(
    private readonly hub: Hub,
    readonly rank: number,
    readonly size: number,
    timeoutMs: number,
  ) {
    super();
    this.mailbox = new Mailbox(size, timeoutMs);
  }

  peerHost(peer: number): string {
    return `in-process #${peer}`;
  }

  send(peer: number, tag: number, payload: Uint8Array, opts?: SendOptions): Promise<void> {
    checkPeer(this, peer);
    checkTag(tag);
    const failure = this.failureFor(peer);
    if (failure) return Promise.reject(failure);
    const copy = payload.slice();
    if (!opts?.uncounted) this.bytesSent += payload.length;
    const target = this.hub.members[peer];
    setImmediate(() => {
      if (this.alive && target.alive) target.mailbox.deliver(this.rank, tag, copy);
    });
    return Promise.resolve();
  }

  recv(peer: number, tag: number, opts?: RecvOptions): Promise<Uint8Array> {
    checkPeer(this, peer);
    checkTag(tag);
    return this.mailbox.recv(peer, tag, opts);
  }

  /** Clean exit: peers see "left the group" on later ops, and no peerLost event. */
  async close(): Promise<void> {
    this.leave(false);
  }

  /** Crash: peers' pending and future ops on this rank fail with PeerError and they emit peerLost. */
  kill(): void {
    this.leave(true);
  }

  private leave(crashed: boolean): void {
    if (!this.alive) return;
    this.alive = false;
    this.mailbox.close(new SmolError('CLOSED', `rank ${this.rank}: transport closed`));
    for (const other of this.hub.members) {
      if (other === this || !other.alive) continue;
      const err = new PeerError(this.rank, this.peerHost(this.rank), crashed ? 'connection lost' : 'left the group');
      other.mailbox.failPeer(this.rank, err);
      if (crashed) other.emit('peerLost', this.rank, err);
    }
  }

  private failureFor(peer: number): Error | null {
    if (!this.alive) return new SmolError('CLOSED', `rank ${this.rank}: transport closed`);
    return this.mailbox.peerFailure(peer);
  }
}

/** N connected in-process transports, index = rank. */
export function createInProcessTransports(size: number, opts: InProcessOptions = {}): InProcessTransport[] {
  const hub: Hub = { members: [] };
  for (let r = 0; r < size; r++) hub.members.push(new InProcessTransport(hub, r, size, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS));
  return hub.members;
}
