/**
 * Parquet row groups read synchronously, so text data loads the same way from every format:
 * hyparquet (a maintained pure-JS reader, with hyparquet-compressors for snappy, zstd, gzip, brotli
 * and lz4) runs in a worker thread (parquet_worker.ts) while this thread waits on a shared flag and
 * then takes the reply off the port (`receiveMessageOnPort`). One row group is in memory at a time.
 */
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';

export type ParquetRequest =
  | { op: 'layout'; file: string }
  | { op: 'rows'; file: string; column: string; rowStart: number; rowEnd: number };

export type ParquetReply =
  | { ok: true; groups: { start: number; end: number }[]; columns: string[] }
  | { ok: true; values: unknown[] }
  | { ok: false; error: string };

/** Parquet files read synchronously through one worker; `close()` ends it. */
export class ParquetReader {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./parquet_worker.js', import.meta.url), { workerData: { port: port2, flag: this.flag }, transferList: [port2] });
    this.worker.unref();
  }

  /** The file's row groups (row ranges) and top-level column names. */
  layout(file: string): { groups: { start: number; end: number }[]; columns: string[] } {
    return this.call({ op: 'layout', file }) as { groups: { start: number; end: number }[]; columns: string[] };
  }

  /** The values of `column` in rows [rowStart, rowEnd). */
  rows(file: string, column: string, rowStart: number, rowEnd: number): unknown[] {
    return (this.call({ op: 'rows', file, column, rowStart, rowEnd }) as { values: unknown[] }).values;
  }

  close(): void {
    void this.worker.terminate();
  }

  private call(request: ParquetRequest): Exclude<ParquetReply, { ok: false }> {
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage(request);
    // A reader that died (a bug, not bad data: that comes back as an error reply) must not hang the run.
    if (Atomics.wait(this.flag, 0, 0, 600_000) === 'timed-out') throw new Error(`parquet reader: no answer for ${request.file} in 10 minutes`);
    const reply = receiveMessageOnPort(this.port)?.message as ParquetReply | undefined;
    if (!reply) throw new Error(`parquet reader: no reply for ${request.file}`);
    if (!reply.ok) throw new Error(reply.error);
    return reply;
  }
}
