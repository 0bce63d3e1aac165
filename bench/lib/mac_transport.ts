/**
 * A per-message MAC over any Transport, for bench:frame-mac only (a measurement prototype, not a
 * product option): every message is followed by HMAC-SHA256(session key, sender, receiver, tag,
 * payload) under a tag of its own, and a recv resolves only once the MAC of what arrived checks.
 * It costs what a per-frame MAC on the data plane must cost at least: one hash of every byte sent
 * and one of every byte received.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { RecvOptions, SendOptions, Transport } from '../../src/comm/transport.js';
import { ProtocolError } from '../../src/util/errors.js';

/** MAC messages travel at tag + 2^51 (collective and p2p tags stay below it). */
const MAC_OFFSET = 2 ** 51;

export class MacTransport extends EventEmitter implements Transport {
  readonly rank: number;
  readonly size: number;
  /** Messages whose MAC was checked (the bench asserts it is not zero). */
  verified = 0;

  constructor(private readonly inner: Transport, private readonly key: Buffer) {
    super();
    this.rank = inner.rank;
    this.size = inner.size;
  }

  get bytesSent(): number | undefined {
    return this.inner.bytesSent;
  }

  peerHost(peer: number): string {
    return this.inner.peerHost(peer);
  }

  async send(peer: number, tag: number, payload: Uint8Array, opts?: SendOptions): Promise<void> {
    const mac = this.mac(this.rank, peer, tag, payload);
    await Promise.all([this.inner.send(peer, tag, payload, opts), this.inner.send(peer, tag + MAC_OFFSET, mac, opts)]);
  }

  async recv(peer: number, tag: number, opts?: RecvOptions): Promise<Uint8Array> {
    const [data, mac] = await Promise.all([
      this.inner.recv(peer, tag, opts),
      this.inner.recv(peer, tag + MAC_OFFSET, { timeoutMs: opts?.timeoutMs, op: opts?.op }),
    ]);
    const expected = this.mac(peer, this.rank, tag, data);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw new ProtocolError(`MAC mismatch on a message from rank ${peer} (tag ${tag})`);
    this.verified++;
    return data;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private mac(from: number, to: number, tag: number, payload: Uint8Array): Buffer {
    const head = Buffer.alloc(16);
    head.writeUInt32LE(from, 0);
    head.writeUInt32LE(to, 4);
    head.writeDoubleLE(tag, 8);
    return createHmac('sha256', this.key).update(head).update(payload).digest();
  }
}
