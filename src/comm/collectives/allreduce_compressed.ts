/**
 * Compressed all-reduce: every rank encodes its buffer once with a codec (codecs/), sends the
 * encoded bytes to every other rank, and decodes and sums all n contributions itself in rank order
 * 0..n-1 (its own decoded from its own bytes), so every rank ends with identical bits. Bytes sent per
 * rank: (n-1) * encoded size — at 2 ranks what the ring sends (one buffer), but compressed;
 * at 4 ranks int8 still sends half of the float32 ring's 1.5 buffers. Every value is encoded exactly
 * once, so error feedback (the caller keeps what its encoding lost, `residual`) sees all the error.
 */
import type { Codec } from '../codecs/codec.js';
import { later, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';
import { divideInPlace, reduceInto } from './reduce_ops.js';

export async function compressedAllReduce(ctx: OpContext, data: Float32Array, codec: Codec, op: 'sum' | 'avg', residual?: Float32Array): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const len = data.length;
  const enc = codec.encodedBytes(len);
  // One scratch: n encoded slots (each starting 4-byte aligned), then one decoded buffer.
  const slotBytes = Math.ceil(enc / 4) * 4;
  const scratch = ctx.scratch.acquire((slotBytes / 4) * n + len);
  const slot = (p: number): Uint8Array => new Uint8Array(scratch.buffer, scratch.byteOffset + p * slotBytes, enc);
  const decoded = scratch.subarray((slotBytes / 4) * n, (slotBytes / 4) * n + len);
  const inputs: Promise<Uint8Array>[] = [];
  for (let p = 0; p < n; p++) if (p !== r) inputs.push(later(t.recv(p, tagOf(ctx, 0), recvOptions(ctx, slot(p)))));
  codec.encode(data, slot(r));
  const sends: Promise<void>[] = [];
  for (let p = 0; p < n; p++) if (p !== r) sends.push(later(t.send(p, tagOf(ctx, 0), slot(r), sendOptions(ctx))));
  if (residual) {
    // What this rank's encoding lost, before `data` is overwritten with the sum.
    codec.decode(slot(r), decoded);
    for (let i = 0; i < len; i++) residual[i] = data[i] - decoded[i];
  }
  await Promise.all(inputs);
  await Promise.all(sends);
  codec.decode(slot(0), data);
  for (let p = 1; p < n; p++) {
    codec.decode(slot(p), decoded);
    reduceInto(data, decoded, 'sum');
  }
  if (op === 'avg') divideInPlace(data, n);
  ctx.scratch.release(scratch);
}
