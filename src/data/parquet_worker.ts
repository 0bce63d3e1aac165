/**
 * The worker behind parquet_sync.ts: hyparquet reads asynchronously, so it runs here and answers
 * each request on a message port, then wakes the waiting thread through a shared flag.
 */
import { type MessagePort, workerData } from 'node:worker_threads';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { ParquetReply, ParquetRequest } from './parquet_sync.js';

const { port, flag } = workerData as { port: MessagePort; flag: Int32Array };

port.on('message', (request: ParquetRequest) => {
  void answer(request).then((reply) => {
    port.postMessage(reply);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
});

async function answer(request: ParquetRequest): Promise<ParquetReply> {
  try {
    const file = await asyncBufferFromFile(request.file);
    const metadata = await parquetMetadataAsync(file);
    if (request.op === 'layout') {
      let start = 0;
      const groups = metadata.row_groups.map((g) => {
        const end = start + Number(g.num_rows);
        const group = { start, end };
        start = end;
        return group;
      });
      return { ok: true, groups, columns: parquetSchema(metadata).children.map((c) => c.element.name) };
    }
    const rows = await parquetReadObjects({ file, metadata, columns: [request.column], rowStart: request.rowStart, rowEnd: request.rowEnd, compressors });
    return { ok: true, values: rows.map((r) => r[request.column]) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}
