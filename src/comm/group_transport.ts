/**
 * The transport of a sub-group (ProcessGroup.split): a view over its parent's transport that numbers
 * the members 0..size-1 and keeps their messages apart from the parent's and from other splits'
 * (its tags are moved into the parent's region for that split, tag_space.ts). Messages travel on the
 * parent's links, so shared memory, bytes counted and deadlines work as they do for the parent.
 *
 * Errors from the parent are renamed into the group's numbering, naming the parent's rank too: a
 * timeout "waiting for rank 1 (rank 3 of the parent, in sub-group 'tp')".
 */
import { EventEmitter } from 'node:events';
import { PeerError, SmolError, TimeoutError } from '../util/errors.js';
import { TAG_HI, type TagRegion } from './tag_space.js';
import { checkPeer, type RecvOptions, type SendOptions, type Transport } from './transport.js';

export class GroupTransport extends EventEmitter implements Transport {
  readonly size: number;
  readonly tagHiWords: number;
  private readonly tagOffset: number;
  private readonly tagLimit: number;
  private readonly subRankOf = new Map<number, number>();
  private sent = 0;
  private closed = false;
  private listening = false;
  private readonly onParentLost = (parentRank: number, err: PeerError): void => {
    const sub = this.subRankOf.get(parentRank);
    if (sub !== undefined && sub !== this.rank) this.emit('peerLost', sub, this.renamePeerError(err, sub));
  };

  /** `members[i]` is the parent rank of sub-rank i; `rank` is this process's sub-rank. */
  constructor(
    readonly parent: Transport,
    readonly members: readonly number[],
    readonly rank: number,
    region: TagRegion,
    readonly label: string,
  ) {
    super();
    this.size = members.length;
    members.forEach((p, i) => this.subRankOf.set(p, i));
    this.tagHiWords = region.hiWords;
    this.tagOffset = region.startHi * TAG_HI;
    this.tagLimit = region.hiWords * TAG_HI;
    // Listen to the parent only once someone listens here: many groups over one transport add no listeners.
    this.on('newListener', (event: string) => {
      if (event !== 'peerLost' || this.listening || this.closed) return;
      this.listening = true;
      parent.on('peerLost', this.onParentLost);
    });
  }

  /** Bytes this group's messages added to the parent's count. */
  get bytesSent(): number {
    return this.sent;
  }

  send(peer: number, tag: number, payload: Uint8Array, opts?: SendOptions): Promise<void> {
    const closed = this.check(peer, tag);
    if (closed) return Promise.reject(closed);
    const before = this.parent.bytesSent ?? 0;
    const sent = this.parent.send(this.members[peer], this.tagOffset + tag, payload, opts);
    this.sent += (this.parent.bytesSent ?? 0) - before;
    return sent.catch((err: unknown) => {
      throw this.rename(err);
    });
  }

  recv(peer: number, tag: number, opts?: RecvOptions): Promise<Uint8Array> {
    const closed = this.check(peer, tag);
    if (closed) return Promise.reject(closed);
    return this.parent.recv(this.members[peer], this.tagOffset + tag, opts).catch((err: unknown) => {
      throw this.rename(err);
    });
  }

  consumesPiecesFrom(peer: number): boolean {
    return this.parent.consumesPiecesFrom?.(this.members[peer]) ?? false;
  }

  peerHost(peer: number): string {
    return this.parent.peerHost(this.members[peer]);
  }

  /** Leaves the parent open (it and sibling groups go on); this group's later messages are refused. */
  async close(): Promise<void> {
    this.closed = true;
    this.parent.off('peerLost', this.onParentLost);
  }

  /** Throws on a bad peer or tag, as every transport does; returns the error of a closed group. */
  private check(peer: number, tag: number): Error | null {
    checkPeer(this, peer);
    if (!Number.isInteger(tag) || tag < 0 || tag >= this.tagLimit) throw new RangeError(`invalid tag ${tag} in ${this.label} (below ${this.tagHiWords} * 2^32)`);
    return this.closed ? new SmolError('CLOSED', `${this.label}: group closed`) : null;
  }

  /** A parent error in this group's numbering, naming the parent's rank too. */
  private rename(err: unknown): unknown {
    if (err instanceof TimeoutError) {
      const ranks = err.ranks.map((p) => this.subRankOf.get(p) ?? p);
      const parents = err.ranks.length === 1 ? `rank ${err.ranks[0]}` : `ranks ${err.ranks.join(', ')}`;
      return new TimeoutError(err.op, ranks, err.waitedMs, `${parents} of the parent, in ${this.label}`);
    }
    if (err instanceof PeerError) {
      const sub = this.subRankOf.get(err.rank);
      return sub === undefined ? err : this.renamePeerError(err, sub);
    }
    return err;
  }

  private renamePeerError(err: PeerError, sub: number): PeerError {
    // PeerError's message starts with the rank and host it names (util/errors.ts): say them once, renumbered.
    const named = err.host ? `rank ${err.rank} (${err.host}): ` : `rank ${err.rank}: `;
    const what = err.message.startsWith(named) ? err.message.slice(named.length) : err.message;
    return new PeerError(sub, err.host, `${what} (rank ${err.rank} of the parent, in ${this.label})`, { cause: err });
  }
}
