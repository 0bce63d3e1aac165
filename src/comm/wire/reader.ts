/**
 * Streaming frame parser. Bytes arrive in arbitrary pieces (a frame split over many TCP reads, or many
 * frames in one read); the reader turns them into validated frames without ever concatenating buffers.
 *
 * It works in the socket's "read into my buffer" mode (net `onread`): `nextBuffer()` says where the
 * next read should land and `commit(n)` consumes it. Headers and small payloads land in a fixed
 * staging buffer; once a header says a large payload follows, reads go straight into the payload's
 * final destination (the sink's `target`, e.g. the caller's Float32Array), so a tensor is touched once
 * by the kernel's copy and never again. `push(chunk)` serves streams that hand us their own chunks.
 */
import { HEADER_BYTES, readHeader, type FrameHeader, type FrameLimits } from './frame.js';
import { ProtocolError } from '../../util/errors.js';

export interface FrameSink {
  /** Where this frame's payload (exactly h.length bytes) should land. Called once per frame with length > 0. */
  target(h: FrameHeader): Uint8Array;
  /** The whole frame has arrived; `payload` is the buffer returned by target (or empty). */
  frame(h: FrameHeader, payload: Uint8Array): void;
}

export interface ReaderOptions {
  version: number;
  limits: FrameLimits;
  /** Staging buffer size; reads of headers and small payloads land here. */
  stagingBytes?: number;
}

const EMPTY = new Uint8Array(0);
/** Payload remainders at least this big are read straight into their destination. */
const DIRECT_MIN = 16 << 10;
/** Staging room below which we move the (tiny) unparsed tail back to the front. */
const MIN_ROOM = 16 << 10;
/**
 * Largest read into staging. Bytes of a big payload that arrive in the same read as its header are
 * copied once more (staging -> destination); capping the read bounds that extra copy per message,
 * while still gathering many small frames per read.
 */
const MAX_STAGED_READ = 64 << 10;
/** Where reads land once the reader is released: bytes after the end are dropped unread. */
const DISCARD = new Uint8Array(MAX_STAGED_READ);

export class FrameReader {
  /** Allocated at the first read and dropped at release(), so idle or closed connections hold none. */
  private staging: Uint8Array = EMPTY;
  private released = false;
  private rpos = 0;
  private wpos = 0;
  private header: FrameHeader | null = null;
  private payload: Uint8Array = EMPTY;
  private filled = 0;
  private direct = false;

  constructor(
    private readonly sink: FrameSink,
    private readonly opts: ReaderOptions,
  ) {}

  /**
   * The connection has ended (or refused its peer): drop the staging buffer and any unfinished
   * payload now rather than when the socket object is collected, and ignore whatever still arrives.
   */
  release(): void {
    this.released = true;
    this.staging = EMPTY;
    this.header = null;
    this.payload = EMPTY;
    this.rpos = this.wpos = this.filled = 0;
  }

  /** Bytes this reader holds for unfinished work: its staging buffer and a partly read payload. */
  get heldBytes(): number {
    return this.staging.length + this.payload.length;
  }

  /** True when some bytes of an unfinished frame have been read (a close now means truncation). */
  get midFrame(): boolean {
    return this.header !== null || this.wpos > this.rpos;
  }

  describeTruncation(): string {
    if (this.header) return `truncated frame: got ${this.filled} of ${this.header.length} payload bytes`;
    return `truncated frame: got ${this.wpos - this.rpos} of ${HEADER_BYTES} header bytes`;
  }

  /** The buffer the next read should fill (any prefix of it). */
  nextBuffer(): Uint8Array {
    if (this.released) return DISCARD;
    if (this.staging.length === 0) this.staging = new Uint8Array(this.opts.stagingBytes ?? 256 << 10);
    const h = this.header;
    if (h && h.length - this.filled >= DIRECT_MIN) {
      this.direct = true;
      return this.payload.subarray(this.filled);
    }
    this.direct = false;
    if (this.rpos === this.wpos) this.rpos = this.wpos = 0;
    else if (this.staging.length - this.wpos < MIN_ROOM) this.compact();
    return this.staging.subarray(this.wpos, this.wpos + MAX_STAGED_READ);
  }

  /** `n` bytes were written at the start of the last nextBuffer(). Throws ProtocolError on a bad frame. */
  commit(n: number): void {
    if (this.released) return;
    if (this.direct) {
      this.filled += n;
      if (this.filled === this.header!.length) this.finish();
      return;
    }
    this.wpos += n;
    this.parse();
  }

  /** Feeds a chunk we do not own (stream 'data' mode): copied through the same path. */
  push(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length && !this.released) {
      const dst = this.nextBuffer();
      const k = Math.min(dst.length, chunk.length - off);
      dst.set(chunk.subarray(off, off + k));
      off += k;
      this.commit(k);
    }
  }

  private parse(): void {
    for (;;) {
      if (!this.header) {
        if (this.wpos - this.rpos < HEADER_BYTES) return;
        const h = readHeader(this.staging, this.rpos, this.opts.version, this.opts.limits);
        this.rpos += HEADER_BYTES;
        this.begin(h);
        if (!this.header) continue; // empty payload, already delivered
      }
      const h = this.header!;
      const k = Math.min(this.wpos - this.rpos, h.length - this.filled);
      if (k > 0) {
        this.payload.set(this.staging.subarray(this.rpos, this.rpos + k), this.filled);
        this.rpos += k;
        this.filled += k;
      }
      if (this.filled < h.length) return;
      this.finish();
    }
  }

  private begin(h: FrameHeader): void {
    if (h.length === 0) {
      this.sink.frame(h, EMPTY);
      return;
    }
    const target = this.sink.target(h);
    if (target.length !== h.length) throw new ProtocolError(`sink gave ${target.length} bytes for a ${h.length}-byte payload`);
    this.header = h;
    this.payload = target;
    this.filled = 0;
  }

  private finish(): void {
    const h = this.header!;
    const payload = this.payload;
    this.header = null;
    this.payload = EMPTY;
    this.filled = 0;
    this.sink.frame(h, payload);
  }

  private compact(): void {
    this.staging.copyWithin(0, this.rpos, this.wpos);
    this.wpos -= this.rpos;
    this.rpos = 0;
  }
}
