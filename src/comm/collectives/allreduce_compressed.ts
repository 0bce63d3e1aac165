/**
 * Compressed all-reduce: every rank encodes its buffer once with a codec (codecs/), sends the
 * encoded bytes to every other rank, and decodes and sums all n contributions itself in rank order
 * 0..n-1 (its own decoded from its own bytes), so every rank ends with identical bits. Bytes sent per
 * rank: (n-1) * encoded size — at 2 ranks what the ring sends (one buffer), but compressed;
 * at 4 ranks int8 still sends half of the float32 ring's 1.5 buffers. Every value is encoded exactly
 * once, so error feedback (the caller keeps what its encoding lost, `residual`) sees all the error.
 *
 * `exact` (optional) rides in the same message as raw float32 after the encoded bytes and is summed
 * exactly, in rank order: a few statistics (a step's loss and samples) exchanged without a message
 * latency of their own, which on a slow link costs as much as the gradient itself.
 */
import type { Codec } from '../codecs/codec.js';
import { later, recvOptions, sendOptions, tagOf, type OpContext } from './context.js';
import { divideInPlace, reduceInto } from './reduce_ops.js';

export async function compressedAllReduce(ctx: OpContext, data: Float32Array, codec: Codec, op: 'sum' | 'avg', residual?: Float32Array, exact?: Float32Array): Promise<void> {
  const { transport: t, rank: r, size: n } = ctx;
  const len = data.length;
  const encBytes = codec.encodedBytes(len);
  const tailFloats = exact?.length ?? 0;
  // One scratch: n slots (encoded bytes padded to 4, then the exact tail), then one decoded buffer.
  const encFloats = Math.ceil(encBytes / 4);
  const slotFloats = encFloats + tailFloats;
  // Bytes on the wire: the encoding, then (only with a tail) padding and the tail.
  const enc = tailFloats > 0 ? 4 * slotFloats : encBytes;
  const scratch = ctx.scratch.acquire(slotFloats * n + len);
  const slot = (p: number): Uint8Array => new Uint8Array(scratch.buffer, scratch.byteOffset + 4 * p * slotFloats, enc);
  const tail = (p: number): Float32Array => scratch.subarray(p * slotFloats + encFloats, (p + 1) * slotFloats);
  const decoded = scratch.subarray(slotFloats * n, slotFloats * n + len);
  const inputs: Promise<Uint8Array>[] = [];
  for (let p = 0; p < n; p++) if (p !== r) inputs.push(later(t.recv(p, tagOf(ctx, 0), recvOptions(ctx, slot(p)))));
  const fusedError = residual !== undefined && codec.encodesError === true;
  codec.encode(data, slot(r), fusedError ? residual : undefined);
  if (exact) tail(r).set(exact);
  const sends: Promise<void>[] = [];
  for (let p = 0; p < n; p++) if (p !== r) sends.push(later(t.send(p, tagOf(ctx, 0), slot(r), sendOptions(ctx))));
  if (residual && !fusedError) {
    // What this rank's encoding lost, before `data` is overwritten with the sum.
    codec.decode(slot(r), decoded);
    for (let i = 0; i < len; i++) residual[i] = data[i] - decoded[i];
  }
  await Promise.all(inputs);
  await Promise.all(sends);
  codec.decode(slot(0), data);
  for (let p = 1; p < n; p++) {
    codec.decode(slot(p), decoded);
    reduceInto(data, decoded, 'sum', ctx.add);
  }
  if (op === 'avg') divideInPlace(data, n);
  if (exact) {
    exact.set(tail(0));
    for (let p = 1; p < n; p++) reduceInto(exact, tail(p), 'sum', ctx.add);
  }
  ctx.scratch.release(scratch);
}
