/**
 * Dissemination barrier: ceil(log2 n) rounds; in round k rank r signals r + 2^k and waits for
 * r - 2^k. After the last round every rank has heard, directly or not, from every other. Empty
 * messages only. A late rank is named by the TimeoutError of whoever waits on it.
 */
import { later, sendOptions, mod, recvOptions, tagOf, type OpContext } from './context.js';

const EMPTY = new Uint8Array(0);

export async function disseminationBarrier(ctx: OpContext): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const sends: Promise<void>[] = [];
  for (let k = 0, dist = 1; dist < n; k++, dist *= 2) {
    const heard = later(t.recv(mod(r - dist, n), tagOf(ctx, k), recvOptions(ctx)));
    sends.push(later(t.send(mod(r + dist, n), tagOf(ctx, k), EMPTY, sendOptions(ctx))));
    await heard;
  }
  await Promise.all(sends);
}
