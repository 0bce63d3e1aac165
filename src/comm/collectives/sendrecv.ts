/**
 * Point-to-point send/recv between two ranks of a group. Only the two ranks take part, so these
 * messages cannot use the group-wide operation sequence; instead each (ordered pair, user tag) keeps
 * its own counter — the n-th send from a to b with tag t matches the n-th recv on b from a with tag
 * t, as in MPI — in a tag range that collectives never use.
 */
import type { RecvOptions, SendOptions, Transport } from '../transport.js';

import { TAG_HI, TagSpace } from '../tag_space.js';

/** The world group's collective sequence numbers stay below this; its p2p tags use the range above it (tag_space.ts). */
export const P2P_SEQ_BASE = new TagSpace().p2pBase;

export class PairCounters {
  private readonly sent = new Map<number, number>();
  private readonly received = new Map<number, number>();

  /** `base`: the group's first point-to-point high word; counters wrap after as many (tag_space.ts). */
  constructor(private readonly base: number = P2P_SEQ_BASE) {}

  nextSendTag(peer: number, userTag: number): number {
    return next(this.sent, peer, userTag, this.base);
  }

  nextRecvTag(peer: number, userTag: number): number {
    return next(this.received, peer, userTag, this.base);
  }

  /** The peer reconnected as a new process: both directions count from zero again. */
  forget(peer: number): void {
    for (const counters of [this.sent, this.received]) {
      for (const key of [...counters.keys()]) if (Math.floor(key / TAG_HI) === peer) counters.delete(key);
    }
  }
}

function next(counters: Map<number, number>, peer: number, userTag: number, base: number): number {
  if (!Number.isInteger(userTag) || userTag < 0 || userTag > 0xffffffff) throw new RangeError(`invalid p2p tag ${userTag}`);
  const key = peer * TAG_HI + userTag;
  const count = counters.get(key) ?? 0;
  counters.set(key, (count + 1) % base);
  return (base + count) * TAG_HI + userTag;
}

export function p2pSend(t: Transport, peer: number, tag: number, data: Uint8Array, opts: SendOptions): Promise<void> {
  return t.send(peer, tag, data, opts);
}

export async function p2pRecv(t: Transport, peer: number, tag: number, into: Uint8Array, opts: RecvOptions): Promise<void> {
  await t.recv(peer, tag, { ...opts, into });
}
