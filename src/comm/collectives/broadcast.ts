/**
 * Pipelined chain broadcast: root -> root+1 -> ... -> root+n-1, cut into chunks so every link of
 * the chain is busy at once. Each rank receives chunks straight into the caller's buffer and
 * forwards each one as soon as it has it. Bytes sent per rank: size (the last rank sends nothing);
 * time ~ size / bandwidth + (n-2) * chunk / bandwidth.
 */
import { later, mod, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';

export async function chainBroadcast(ctx: OpContext, data: Uint8Array, root: number, chunkBytes: number): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const pos = mod(r - root, n); // position in the chain; root is 0
  const next = pos < n - 1 ? mod(r + 1, n) : -1;
  const prev = mod(r - 1, n);
  const chunks = Math.max(1, Math.ceil(data.length / Math.max(1, chunkBytes)));
  const chunk = (c: number): Uint8Array => data.subarray(Math.floor((c * data.length) / chunks), Math.floor(((c + 1) * data.length) / chunks));
  const sends: Promise<void>[] = [];
  if (pos === 0) {
    for (let c = 0; c < chunks; c++) sends.push(later(t.send(next, tagOf(ctx, c), chunk(c), sendOptions(ctx))));
    await Promise.all(sends);
    return;
  }
  const incoming: Promise<Uint8Array>[] = [];
  for (let c = 0; c < chunks; c++) incoming.push(later(t.recv(prev, tagOf(ctx, c), recvOptions(ctx, chunk(c)))));
  for (let c = 0; c < chunks; c++) {
    await incoming[c];
    if (next >= 0) sends.push(later(t.send(next, tagOf(ctx, c), chunk(c), sendOptions(ctx))));
  }
  await Promise.all(sends);
}
