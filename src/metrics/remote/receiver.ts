import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Transport } from '../../comm/transport.js';
import { EventLog, eventsFile } from '../events.js';
import { JsonlWriter } from '../jsonl.js';
import type { TrainObserver } from '../records.js';
import { SINK_FILE, STREAM_TAG, checkRecord, decodeMessage, encodeSink } from './wire.js';

export interface ReceiverOptions {
  transport: Transport;
  /** Rank 0's run folder: the other ranks' lines are appended to its metrics.jsonl and events.jsonl. */
  dir: string;
  /** How long close() waits for every rank's end of stream (ms). */
  endWaitMs: number;
  /** Where warnings go (a bad line, records dropped, a rank that did not end its stream). */
  warn?: (message: string) => void;
}

/** What rank 0 got from one rank. */
export interface PeerStream {
  rank: number;
  state: 'waiting' | 'streaming' | 'local' | 'ended' | 'lost';
  records: number;
  /** As counted by the sender's bounded queue. */
  dropped: number;
  /** Lines refused here (not JSON objects, or naming another rank). */
  refused: number;
}

const LONG_WAIT_MS = 2 ** 31 - 1;

/**
 * Rank 0's side of the metric stream (wire.ts). When training starts (onStart: the run folder
 * exists) it leaves its sink marker in the folder and asks every rank for its lines; each rank's
 * lines are checked and appended to this folder's metrics.jsonl and events.jsonl, so a dashboard
 * beside rank 0 — which follows those files — shows the whole cluster, whichever hosts the ranks
 * run on. A bad line is refused and reported, never fatal; a rank that is lost ends its stream.
 */
export class MetricReceiver implements TrainObserver {
  readonly peers: PeerStream[];
  private started = false;
  private settled = false;
  private metrics: JsonlWriter | null = null;
  private events: EventLog | null = null;
  private readonly finished: Array<Promise<void>> = [];
  private readonly warned = new Set<number>();

  constructor(private readonly o: ReceiverOptions) {
    this.peers = Array.from({ length: o.transport.size }, (_, rank) => ({ rank, state: 'waiting' as const, records: 0, dropped: 0, refused: 0 })).slice(1);
  }

  onStart(): void {
    if (this.started) return;
    this.started = true;
    const nonce = randomBytes(16).toString('hex');
    writeFileSync(join(this.o.dir, SINK_FILE), `${nonce}\n`);
    for (const peer of this.peers) {
      this.o.transport.send(peer.rank, STREAM_TAG, encodeSink(nonce), { timeoutMs: this.o.endWaitMs, op: 'metric stream', uncounted: true }).catch(() => {});
      this.finished.push(this.follow(peer));
    }
  }

  /**
   * Waits (at most endWaitMs, or `waitMs`) for every rank's end of stream, then records what each
   * sent (metric_stream events). Called before the run's last events, so they come after every
   * rank's lines; once.
   */
  async settle(waitMs = this.o.endWaitMs): Promise<void> {
    if (!this.started || this.settled) return;
    this.settled = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
    await Promise.race([Promise.all(this.finished), deadline]);
    clearTimeout(timer);
    const late = this.peers.filter((p) => p.state === 'waiting' || p.state === 'streaming').map((p) => p.rank);
    if (late.length > 0) this.warn(`metric stream: rank${late.length > 1 ? 's' : ''} ${late.join(', ')} did not end ${late.length > 1 ? 'their streams' : 'its stream'} within ${waitMs} ms; the dashboard may miss their last lines`);
    for (const p of this.peers) {
      if (p.state === 'local' || p.state === 'waiting') continue;
      if (p.dropped > 0) this.warn(`metric stream: rank ${p.rank} dropped ${p.dropped} record${p.dropped === 1 ? '' : 's'} (its queue was full)`);
      this.eventLog().emit('metric_stream', { rank: p.rank, records: p.records, dropped: p.dropped, refused: p.refused, state: p.state });
    }
    this.metrics?.flush();
  }

  /** settle(), then the files are closed and the marker removed. */
  async close(waitMs = this.o.endWaitMs): Promise<void> {
    if (!this.started) return;
    await this.settle(waitMs);
    this.metrics?.close();
    this.events?.close();
    rmSync(join(this.o.dir, SINK_FILE), { force: true });
  }

  private async follow(peer: PeerStream): Promise<void> {
    for (;;) {
      let bytes: Uint8Array;
      try {
        bytes = await this.o.transport.recv(peer.rank, STREAM_TAG, { timeoutMs: LONG_WAIT_MS, op: 'metric stream' });
      } catch {
        if (peer.state === 'waiting' || peer.state === 'streaming') peer.state = 'lost';
        return;
      }
      let m;
      try {
        m = decodeMessage(bytes);
      } catch (err) {
        peer.refused++;
        this.warnOnce(peer.rank, `metric stream from rank ${peer.rank}: ${(err as Error).message}; message dropped`);
        continue;
      }
      if (m.t === 'local') {
        peer.state = 'local';
        return;
      }
      if (m.t !== 'batch') continue;
      peer.state = 'streaming';
      peer.dropped = m.dropped;
      for (const { kind, line } of m.lines) {
        try {
          const record = checkRecord(line, peer.rank);
          if (kind === 'm') (this.metrics ??= new JsonlWriter(join(this.o.dir, 'metrics.jsonl'))).write(record);
          else this.eventLog().relay(record);
          peer.records++;
        } catch (err) {
          peer.refused++;
          this.warnOnce(peer.rank, `metric stream from rank ${peer.rank}: ${(err as Error).message}; line dropped`);
        }
      }
      if (m.end) {
        peer.state = 'ended';
        return;
      }
    }
  }

  /** Opened on the first line: the run's owner has reset the file by then. */
  private eventLog(): EventLog {
    return (this.events ??= new EventLog(eventsFile(this.o.dir)));
  }

  private warnOnce(rank: number, message: string): void {
    if (this.warned.has(rank)) return;
    this.warned.add(rank);
    this.warn(message);
  }

  private warn(message: string): void {
    (this.o.warn ?? ((m: string) => process.stderr.write(`smolcluster: ${m}\n`)))(message);
  }
}
