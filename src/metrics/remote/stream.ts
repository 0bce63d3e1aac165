import type { Transport } from '../../comm/transport.js';
import type { TrainObserver } from '../records.js';
import { MetricReceiver } from './receiver.js';
import { MetricSender } from './sender.js';

const FAILED_WAIT_MS = 1000;

export interface MetricStream {
  /** Rank 0's observer (it starts collecting when training starts); none on the other ranks. */
  observer?: TrainObserver;
  /**
   * The end of the run: senders flush, rank 0 waits for them (both bounded by timeoutMs). After a
   * failure rank 0 waits only briefly: the others may be stuck waiting for it.
   */
  close(failed?: boolean): Promise<void>;
  /** Rank 0, before the run's last events: every rank's lines are in (bounded by timeoutMs). */
  settle(): Promise<void>;
}

/**
 * Every rank's metrics and events to rank 0 (remote/wire.ts): rank 0 collects into its run folder,
 * the others send. A group of one has nothing to stream.
 */
export function startMetricStream(o: { transport: Transport; rank: number; dir: string; timeoutMs: number }): MetricStream {
  if (o.transport.size < 2) return { close: async () => {}, settle: async () => {} };
  if (o.rank === 0) {
    const receiver = new MetricReceiver({ transport: o.transport, dir: o.dir, endWaitMs: o.timeoutMs });
    return { observer: receiver, close: (failed) => receiver.close(failed ? FAILED_WAIT_MS : undefined), settle: () => receiver.settle() };
  }
  const sender = new MetricSender({ transport: o.transport, dir: o.dir, timeoutMs: o.timeoutMs });
  return { close: () => sender.close(), settle: async () => {} };
}
