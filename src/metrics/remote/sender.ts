import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Transport } from '../../comm/transport.js';
import { EVENTS_FILE } from '../events.js';
import { tapFile } from '../tap.js';
import { BATCH_BYTES, type RecordKind, SINK_FILE, STREAM_TAG, decodeMessage, encodeBatch, encodeLocal } from './wire.js';

export interface SenderOptions {
  transport: Transport;
  /** This rank's run folder: its metrics.jsonl and events.jsonl are tapped. */
  dir: string;
  /** Records held at most (beyond it new records are dropped and counted). */
  maxRecords?: number;
  /** Bytes held at most. */
  maxBytes?: number;
  /** Records wait this long to travel together (ms). */
  batchMs?: number;
  /** Deadline of one send (a rank 0 that stops reading) and of the final flush (ms). */
  timeoutMs: number;
}

/** How long a rank waits for rank 0's sink message (rank 0 sends it when training starts). */
const SINK_WAIT_MS = 2 ** 31 - 1;

/**
 * A rank's side of the metric stream (wire.ts): every line this rank writes to its metrics.jsonl
 * and events.jsonl is also queued for rank 0 and sent in batches by a pump that runs beside
 * training (on the event loop's turns: the steps only add a line to a queue). The queue is
 * bounded: when rank 0 or the link cannot keep up, new lines are dropped and counted, never waited
 * for. If rank 0's folder is this rank's own (one host, or a shared file system), nothing is sent.
 */
export class MetricSender {
  private state: 'waiting' | 'streaming' | 'local' | 'stopped' = 'waiting';
  private queue: string[] = [];
  private queuedBytes = 0;
  private dropped = 0;
  private sending: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly untap: Array<() => void>;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  /** Why the stream stopped early (a failed send), for the final report. */
  failure: Error | null = null;
  /** Resolves once rank 0's sink message said where the lines go (or the stream stopped). */
  private decide: () => void = () => {};
  private readonly decided = new Promise<void>((resolve) => (this.decide = resolve));

  constructor(private readonly o: SenderOptions) {
    this.maxRecords = o.maxRecords ?? 4096;
    this.maxBytes = o.maxBytes ?? 4 << 20;
    this.untap = [
      tapFile(join(o.dir, 'metrics.jsonl'), (line) => this.add('m', line)),
      tapFile(join(o.dir, EVENTS_FILE), (line) => this.add('e', line)),
    ];
    o.transport.recv(0, STREAM_TAG, { timeoutMs: SINK_WAIT_MS, op: 'metric stream' }).then(
      (bytes) => this.onSink(bytes),
      (err: Error) => this.stop(err),
    );
  }

  /** Records dropped so far. */
  get droppedRecords(): number {
    return this.dropped;
  }

  add(kind: RecordKind, line: string): void {
    if (this.state === 'local' || this.state === 'stopped') return;
    const bytes = line.length + 2;
    if (this.queue.length >= this.maxRecords || this.queuedBytes + bytes > this.maxBytes) {
      this.dropped++;
      return;
    }
    this.queue.push(kind + line);
    this.queuedBytes += bytes;
    this.schedule();
  }

  /** Sends what is queued and the end of the stream (bounded by timeoutMs); stops tapping. */
  async close(): Promise<void> {
    for (const u of this.untap) u();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.o.timeoutMs)));
    // A short run may end before rank 0's sink message has arrived: wait for it (bounded).
    if (this.state === 'waiting') await Promise.race([this.decided, deadline]);
    if (this.state === 'streaming') await Promise.race([this.drain(), deadline]);
    clearTimeout(timer);
    if (this.state !== 'local') this.stop(new Error('closed'));
  }

  private async drain(): Promise<void> {
    try {
      await this.sending;
      do await this.sendBatch(true);
      while (this.queue.length > 0 && this.state === 'streaming');
    } catch (err) {
      this.stop(err as Error);
    }
  }

  private onSink(bytes: Uint8Array): void {
    if (this.state !== 'waiting') return;
    let nonce: string | null = null;
    try {
      const m = decodeMessage(bytes);
      if (m.t === 'sink') nonce = m.nonce;
    } catch {
      // not a sink message: rank 0 is not collecting
    }
    if (nonce === null) return this.stop(new Error('rank 0 sent no sink message'));
    if (readMarker(this.o.dir) === nonce) {
      // Rank 0 writes to this very folder: it already has every line.
      this.state = 'local';
      this.queue = [];
      this.queuedBytes = 0;
      for (const u of this.untap) u();
      this.decide();
      this.o.transport.send(0, STREAM_TAG, encodeLocal(), { timeoutMs: this.o.timeoutMs, op: 'metric stream', uncounted: true }).catch(() => {});
      return;
    }
    this.state = 'streaming';
    this.decide();
    this.schedule();
  }

  private schedule(): void {
    if (this.state !== 'streaming' || this.sending || this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, this.o.batchMs ?? 100);
    this.timer.unref();
  }

  private pump(): void {
    if (this.state !== 'streaming' || this.sending) return;
    this.sending = this.sendBatch(false).then(
      () => {
        this.sending = null;
        this.schedule();
      },
      (err: Error) => {
        this.sending = null;
        this.stop(err);
      },
    );
  }

  /** One message of at most BATCH_BYTES (or one record); `end` on the last one of a final flush. */
  private sendBatch(final: boolean): Promise<void> {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || bytes + this.queue[n].length <= BATCH_BYTES)) bytes += this.queue[n++].length + 1;
    const lines = this.queue.splice(0, n);
    this.queuedBytes = Math.max(0, this.queuedBytes - bytes - n);
    const end = final && this.queue.length === 0;
    return this.o.transport.send(0, STREAM_TAG, encodeBatch(lines, this.dropped, end), { timeoutMs: this.o.timeoutMs, op: 'metric stream', uncounted: true });
  }

  private stop(err: Error): void {
    if (this.state === 'stopped' || this.state === 'local') return;
    if (this.state === 'streaming' || this.state === 'waiting') this.failure ??= err.message === 'closed' ? null : err;
    this.decide();
    this.state = 'stopped';
    this.dropped += this.queue.length;
    this.queue = [];
    this.queuedBytes = 0;
    for (const u of this.untap) u();
  }
}

function readMarker(dir: string): string | null {
  try {
    return readFileSync(join(dir, SINK_FILE), 'utf8').trim();
  } catch {
    return null;
  }
}
