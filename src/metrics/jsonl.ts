import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Appends JSON lines to a file that several processes may share (every rank of a local cluster
 * writes the same metrics.jsonl). Lines are buffered and flushed as one write() on an O_APPEND
 * descriptor, which the kernel appends whole, so records from different ranks never interleave
 * inside a line.
 */
export class JsonlWriter {
  private fd: number | null;
  private pending: string[] = [];

  constructor(readonly file: string, private readonly flushEvery = 64) {
    mkdirSync(dirname(file), { recursive: true });
    this.fd = openSync(file, 'a');
  }

  write(record: object): void {
    this.pending.push(JSON.stringify(record));
    if (this.pending.length >= this.flushEvery) this.flush();
  }

  flush(): void {
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
