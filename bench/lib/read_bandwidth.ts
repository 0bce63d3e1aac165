/**
 * This core's single-thread memory read bandwidth, for decode's bound (bench:generate): a streaming
 * read of a buffer far larger than the last-level cache. Buffer.indexOf of a byte that is absent is
 * libc's memchr over the whole buffer (vector loads, nothing written), the fastest plain read one
 * thread of this process can issue; the buffer is filled first (filledBuffer).
 * Each pass is timed on the wall clock and in process CPU time: on a loaded machine the wall clock
 * counts other processes' turns, and decode's fraction of the bound is then read on CPU time.
 */
export interface ReadBandwidth {
  /** Best pass, GB/s (1e9 bytes per second). */
  gbPerSec: number;
  /** Every timed pass, GB/s. */
  passes: number[];
  /** Best pass in GB per CPU-second of this process. */
  gbPerCpuSec: number;
  bytes: number;
}

export function measureReadBandwidth(bytes = 2 ** 31, passes = 4): ReadBandwidth {
  return readBandwidthOf(filledBuffer(bytes), passes);
}

/** A buffer of `bytes` whose every page is real memory (filled: a calloc'd one's untouched pages all map the one zero page). */
export function filledBuffer(bytes: number): Buffer {
  return Buffer.allocUnsafe(bytes).fill(7);
}

/** measureReadBandwidth over a buffer of filledBuffer's, which can be held and read again (bench:generate reads one beside each timed decode). */
export function readBandwidthOf(buf: Buffer, passes = 4): ReadBandwidth {
  const bytes = buf.length;
  const rates: number[] = [];
  const cpuRates: number[] = [];
  buf.indexOf(1); // a first pass: page tables and TLB warmed
  for (let p = 0; p < passes; p++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const at = buf.indexOf(1);
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (at !== -1) throw new Error('read bandwidth: the buffer holds the byte searched for');
    rates.push(bytes / ms / 1e6);
    cpuRates.push(bytes / ((c.user + c.system) / 1000) / 1e6);
  }
  return { gbPerSec: Math.max(...rates), passes: rates, gbPerCpuSec: Math.max(...cpuRates), bytes };
}
