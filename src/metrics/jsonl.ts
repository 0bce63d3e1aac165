import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { tapOf } from './tap.js';

/**
 * Appends JSON lines to a file that several processes may share (every rank of a local cluster
 * writes the same metrics.jsonl). Lines are buffered and flushed as one write() on an O_APPEND
 * descriptor, which the kernel appends whole, so records from different ranks never interleave
 * inside a line.
 *
 * A flush happens every `flushEvery` lines, and also once the oldest buffered line is `flushAfterMs`
 * old: checked on each write (a training loop may not yield to timers for a long while) and by a
 * timer (for when writes stop), so live readers see progress and a killed process loses little.
 */
export class JsonlWriter {
  private fd: number | null;
  private pending: string[] = [];
  /** Date.now() when the oldest pending line was written. */
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly resolved: string;

  constructor(readonly file: string, private readonly flushEvery = 64, private readonly flushAfterMs = 500) {
    mkdirSync(dirname(file), { recursive: true });
    this.fd = openSync(file, 'a');
    this.resolved = resolve(file);
  }

  write(record: object): void {
    const now = Date.now();
    if (this.pending.length === 0) this.oldestAt = now;
    const line = JSON.stringify(record);
    this.pending.push(line);
    tapOf(this.resolved)?.(line);
    if (this.pending.length >= this.flushEvery || now - this.oldestAt >= this.flushAfterMs) this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.flushAfterMs);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.fd === null || this.pending.length === 0) return;
    writeSync(this.fd, `${this.pending.join('\n')}\n`);
    this.pending = [];
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
