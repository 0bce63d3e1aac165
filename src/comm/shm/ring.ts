/**
 * A single-producer single-consumer byte ring in shared memory, and the inbox that holds one ring per
 * sender. Counters are uint32 byte counts that only grow (wrapping at 2^32; the capacity is a power
 * of two, so position = counter & (capacity - 1)). The writer owns `head`, the reader `tail`; each
 * publishes with an atomic store after copying, so the other side never sees bytes before they are
 * there (Atomics are sequentially consistent, also on a non-shared ArrayBuffer).
 *
 * Messages: a 16-byte header (magic, tag high word, tag low word, length), then the payload padded to
 * 16 bytes, so every header starts 16-aligned and never wraps. A payload longer than the ring streams
 * through it piece by piece.
 *
 * Inbox layout (one segment per receiving process): 64 bytes of flags (word 0: the doorbell, bumped by
 * whoever wants this process to look again: a writer that published, a reader that freed space; word 1:
 * set while the owner sleeps on the doorbell), then
 * per sender rank s a 64-byte ring header (head, tail) and `capacity` bytes of ring.
 */
export const HEADER_BYTES = 16;
export const MAGIC = 0x5343_4d31; // "SCM1"
const FLAGS_BYTES = 64;
const RING_CTL_BYTES = 64;

export function inboxBytes(size: number, capacity: number): number {
  return FLAGS_BYTES + size * (RING_CTL_BYTES + capacity);
}

export function pad16(n: number): number {
  return (n + 15) & ~15;
}

export class Ring {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  /** The same bytes as words, for headers (always 16-aligned). */
  private readonly words: Uint32Array;
  private readonly mask: number;
  /** The header words of the message at `tail` (valid after peekHeader). */
  readonly header = new Uint32Array(4);

  constructor(
    buffer: ArrayBuffer,
    offset: number,
    readonly capacity: number,
  ) {
    if (capacity < 64 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`ring capacity must be a power of two >= 64, got ${capacity}`);
    this.ctl = new Int32Array(buffer, offset, 2);
    this.data = new Uint8Array(buffer, offset + RING_CTL_BYTES, capacity);
    this.words = new Uint32Array(buffer, offset + RING_CTL_BYTES, capacity / 4);
    this.mask = capacity - 1;
  }

  /** Bytes the writer may add now. */
  writable(): number {
    return this.capacity - ((Atomics.load(this.ctl, 0) - Atomics.load(this.ctl, 1)) >>> 0);
  }

  /** Bytes the reader may take now. */
  readable(): number {
    return (Atomics.load(this.ctl, 0) - Atomics.load(this.ctl, 1)) >>> 0;
  }

  /** Writer: a message header (the caller checked writable() >= HEADER_BYTES). */
  writeHeader(tagHi: number, tagLo: number, length: number): void {
    const head = Atomics.load(this.ctl, 0) >>> 0;
    const w = (head & this.mask) >>> 2;
    this.words[w] = MAGIC;
    this.words[w + 1] = tagHi;
    this.words[w + 2] = tagLo;
    this.words[w + 3] = length;
    Atomics.store(this.ctl, 0, (head + HEADER_BYTES) | 0);
  }

  /**
   * Writer: stream bytes [from, from + count) of a padded payload (src, then zero padding up to
   * pad16(src.length)) into the ring; the caller keeps count <= writable().
   */
  writePiece(src: Uint8Array, from: number, count: number): void {
    const head = Atomics.load(this.ctl, 0) >>> 0;
    this.copyIn(head, src, from, Math.min(from + count, src.length));
    Atomics.store(this.ctl, 0, (head + count) | 0);
  }

  /** Reader: the header at tail into `header` (the caller checked readable() >= HEADER_BYTES). */
  peekHeader(): Uint32Array {
    const w = ((Atomics.load(this.ctl, 1) >>> 0) & this.mask) >>> 2;
    for (let i = 0; i < 4; i++) this.header[i] = this.words[w + i];
    return this.header;
  }

  /** Reader: drops the header just peeked. */
  skipHeader(): void {
    Atomics.store(this.ctl, 1, ((Atomics.load(this.ctl, 1) >>> 0) + HEADER_BYTES) | 0);
  }

  /** Reader: bytes [from, from + count) of a padded payload into dst (the padding is skipped). */
  readPiece(dst: Uint8Array, from: number, count: number): void {
    const tail = Atomics.load(this.ctl, 1) >>> 0;
    const end = Math.min(from + count, dst.length);
    if (end > from) this.copyOut(tail, dst, from, end);
    Atomics.store(this.ctl, 1, (tail + count) | 0);
  }

  /** Reader: like readPiece, but hands the bytes (views into the ring, split at the wrap) to `consume` instead of copying. */
  consumePiece(length: number, from: number, count: number, consume: (bytes: Uint8Array, offset: number) => void): void {
    const tail = Atomics.load(this.ctl, 1) >>> 0;
    const end = Math.min(from + count, length);
    if (end > from) {
      const at = tail & this.mask;
      const first = Math.min(end - from, this.capacity - at);
      consume(this.data.subarray(at, at + first), from);
      if (first < end - from) consume(this.data.subarray(0, end - from - first), from + first);
    }
    Atomics.store(this.ctl, 1, (tail + count) | 0);
  }

  private copyIn(counter: number, src: Uint8Array, a: number, b: number): void {
    if (b <= a) return;
    const at = counter & this.mask;
    const first = Math.min(b - a, this.capacity - at);
    this.data.set(src.subarray(a, a + first), at);
    if (first < b - a) this.data.set(src.subarray(a + first, b), 0);
  }

  private copyOut(counter: number, dst: Uint8Array, a: number, b: number): void {
    const at = counter & this.mask;
    const first = Math.min(b - a, this.capacity - at);
    dst.set(this.data.subarray(at, at + first), a);
    if (first < b - a) dst.set(this.data.subarray(0, b - a - first), a + first);
  }
}

/** One process's inbox: its doorbell and one ring per sender. */
export class Inbox {
  readonly flags: Int32Array;
  private readonly rings: Ring[] = [];

  constructor(
    readonly buffer: ArrayBuffer,
    readonly size: number,
    readonly capacity: number,
  ) {
    if (buffer.byteLength < inboxBytes(size, capacity)) throw new RangeError(`inbox segment of ${buffer.byteLength} bytes is too small for ${size} rings of ${capacity}`);
    this.flags = new Int32Array(buffer, 0, FLAGS_BYTES / 4);
    for (let s = 0; s < size; s++) this.rings.push(new Ring(buffer, FLAGS_BYTES + s * (RING_CTL_BYTES + capacity), capacity));
  }

  /** The ring sender `rank` writes into. */
  ringFrom(rank: number): Ring {
    return this.rings[rank];
  }

  /** Current doorbell value (wait for it to change). */
  bell(): number {
    return Atomics.load(this.flags, 0);
  }

  /** Bumps the doorbell; true if the owner is asleep on it (then it needs a futex wake). */
  ring(): boolean {
    Atomics.add(this.flags, 0, 1);
    return Atomics.load(this.flags, 1) !== 0;
  }

  /**
   * The owner is about to sleep on the doorbell (true) or is awake (false). Ringers skip the wake
   * system call while it is awake: with sequentially consistent atomics, either the ringer sees the
   * flag set and wakes, or the sleeper sees the moved doorbell before it waits.
   */
  setAsleep(asleep: boolean): void {
    Atomics.store(this.flags, 1, asleep ? 1 : 0);
  }
}
