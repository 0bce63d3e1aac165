import type { AttentionGeometry, Backend } from '../backend.js';
import type { DeviceBuffer } from '../storage.js';
import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { hasKernels } from '../kernel_registry.js';
import { ShapeError, sameShape, sizeOf } from '../shape.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';
import { dropMask } from './dropout.js';
import { autocast } from './autocast.js';
import { accumulated, bf16Operand, gradTarget, handsOver, release, roundInPlace, roundedStorage } from './bf16.js';
import { gradInput } from './cast.js';
import { releaseValues } from '../handover.js';
import type { Storage } from '../storage.js';
import type { Rng } from '../../util/rng.js';

export interface AttentionOptions {
  /** Query i attends to keys j <= i only (torch's is_causal=True: top-left aligned). */
  causal?: boolean;
  /** Multiplier of q·kᵀ; default 1/sqrt(d), as torch. */
  scale?: number;
  /**
   * Attention dropout on the probabilities (inverted, like `dropout`), drawn from the caller's
   * seeded Rng so both backends and every rerun drop the same entries. Omit it in evaluation.
   */
  dropout?: { p: number; rng: Rng };
}

/**
 * torch.nn.functional.scaled_dot_product_attention as one fused kernel: q [..., Tq, D],
 * k [..., Tk, D], v [..., Tk, Dv] with equal leading (batch, head) dimensions; returns
 * softmax(scale · q kᵀ + mask) v of shape [..., Tq, Dv]. Only the probabilities [..., Tq, Tk] are
 * kept for the backward pass (no separate score, mask or softmax tensors). bfloat16 q, k, v (a bf16
 * step's autocast casts them) run both products in bf16 and the rest in float32 (attentionBf16).
 *
 * Grouped-query attention (rank 4 and up, heads in dimension -3): q [N, H, Tq, D] with
 * k [N, Hkv, Tk, D], v [N, Hkv, Tk, Dv], H a multiple of Hkv; query head h reads key/value head
 * floor(h / (H / Hkv)), as Hugging Face's repeat_kv, without repeating k or v in memory.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const groups = attentionGroups(q, k, v);
  const lead = q.shape.slice(0, -2);
  const [tq, d] = q.shape.slice(-2);
  const [tk, dv] = [k.shape[k.ndim - 2], v.shape[v.ndim - 1]];
  const g: AttentionGeometry = {
    bh: sizeOf(lead), groups, tq, tk, d, dv,
    scale: opts.scale ?? 1 / Math.sqrt(d), causal: opts.causal ?? false,
  };
  const dropMask = opts.dropout ? attentionDropMask(opts.dropout.p, opts.dropout.rng, q, g) : null;
  const operands = autocast('scaledDotProductAttention', q, k, v);
  if (operands[0].dtype === 'bfloat16') return attentionBf16(operands, g, dropMask, [...lead, tq, dv]);
  const out = Tensor.zeros([...lead, tq, dv], q.dtype, q.device);
  const probs = allocStorage(q.dtype, g.bh * tq * tk, q.device).buffer;
  const kern = kernelsFor(q);
  kern.attention(g, q.buffer, k.buffer, v.buffer, dropMask, out.buffer, probs);
  return record(out, 'scaledDotProductAttention', [q, k, v], (gy) => {
    kern.attentionBackward(
      g, q.buffer, k.buffer, v.buffer, probs, dropMask, gy,
      q.requiresGrad ? q.ensureGrad() : null, k.requiresGrad ? k.ensureGrad() : null, v.requiresGrad ? v.ensureGrad() : null,
    );
  });
}

/**
 * Checks q, k, v against each other and returns the query heads per key/value head (1 unless k and
 * v have fewer heads than q).
 */
function attentionGroups(q: Tensor, k: Tensor, v: Tensor): number {
  const shapes = [q.shape, k.shape, v.shape];
  const fail = (why: string): never => {
    throw new ShapeError('scaledDotProductAttention', why, shapes);
  };
  if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim) fail('q, k, v must have the same rank (>= 2), e.g. [B, H, T, D]');
  const d = q.shape[q.ndim - 1];
  const [tk, dk] = k.shape.slice(-2);
  if (dk !== d || v.shape[v.ndim - 2] !== tk) fail('need k [..., Tk, D] matching q [..., Tq, D] and v [..., Tk, Dv]');
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new Error(`scaledDotProductAttention: dtypes differ (${q.dtype}, ${k.dtype}, ${v.dtype})`);
  const lead = q.shape.slice(0, -2);
  if (sameShape(lead, k.shape.slice(0, -2)) && sameShape(lead, v.shape.slice(0, -2))) return 1;
  if (q.ndim < 4) fail('leading (batch, head) dimensions differ');
  const batch = (s: readonly number[]): number[] => s.slice(0, -3);
  if (!sameShape(batch(q.shape), batch(k.shape)) || !sameShape(batch(q.shape), batch(v.shape))) {
    fail('leading batch dimensions (those before the heads) differ');
  }
  const [heads, kvHeads, vHeads] = shapes.map((s) => s[s.length - 3]);
  if (vHeads !== kvHeads) fail(`k and v have different head counts (${kvHeads}, ${vHeads})`);
  if (kvHeads === 0 || heads % kvHeads !== 0) {
    fail(`grouped-query attention needs the query heads (${heads}) to be a multiple of the key/value heads (${kvHeads})`);
  }
  return heads / kvHeads;
}

function attentionDropMask(p: number, rng: Rng, like: Tensor, g: AttentionGeometry): DeviceBuffer | null {
  if (!(p >= 0 && p < 1)) throw new Error(`scaledDotProductAttention: dropout p must be in [0, 1), got ${p}`);
  if (p === 0) return null;
  return dropMask(rng, p, allocStorage(accumulated(like), g.bh * g.tq * g.tk, like.device)).buffer;
}

/**
 * Attention on bfloat16 q, k, v (docs/PRECISION.md), as torch's CPU flash attention splits it: both
 * products (q·kᵀ and probs·v, and the four of the backward) in bf16 with float32 accumulation; the
 * scaled scores, the softmax and its backward in float32. The probabilities are kept in float32 (the
 * softmax backward reads them); q, k, v (unless handed over: then their bf16 copies are kept) and
 * the bf16 probabilities (after dropout) that multiply v are rounded again in the backward (see
 * bf16Operand); gy is rounded in its own memory. Each product runs once per key/value slice, its
 * `groups` query slices taken as one [groups · tq, ·] block (they are consecutive in memory), so gk
 * and gv sum over a group's query heads inside the product.
 */
function attentionBf16(
  operands: Tensor[], g: AttentionGeometry, mask: DeviceBuffer | null, outShape: number[],
): Tensor {
  if (hasKernels(operands[0].device, 'bfloat16', ['attention', 'attentionBackward'])) return fusedBf16(operands, g, mask, outShape);
  const [q, k, v] = operands.map(gradInput);
  const { bh, tq, tk, d, dv } = g;
  const n = bh * tq * tk;
  const kv = bh / g.groups;
  const rows = g.groups * tq;
  const kern = kernelsFor({ device: q.device, dtype: 'float32' });
  const kb = kernelsFor(operands[0]);
  // q, k, v handed over (handover.ts): their bf16 casts are the saved tensors, their float32 values go.
  const handedOver = operands.map((t) => handsOver(t));
  const [qo, ko, vo] = operands.map((t, i) => bf16Operand(t, handedOver[i]));
  const scores = allocUninit('float32', n, q.device);
  kb.gemm(false, true, rows, tk, d, g.scale, qo.forward, rows * d, ko.forward, tk * d, 0, scores.buffer, rows * tk, kv);
  qo.release();
  ko.release();
  const probsStorage = allocUninit('float32', n, q.device);
  const probs = probsStorage.buffer;
  if (g.causal) kern.softmaxCausal(scores.buffer, bh, tq, tk, probs);
  else kern.softmax(scores.buffer, bh * tq, tk, probs);
  release(scores);
  const out = new Tensor(allocUninit('float32', bh * tq * dv, q.device), outShape);
  const pb = droppedBf16(kern, probs, mask, n, q);
  kb.gemm(false, false, rows, dv, tk, 1, pb.buffer, rows * tk, vo.forward, tk * dv, 0, out.buffer, rows * dv, kv);
  // Without dropout the backward reads the probabilities as this bf16 copy (2 bytes an element, as
  // autocast's saved tensors are), widened again for the softmax backward; the float32 ones go now.
  const keptPb = mask ? null : pb;
  release(keptPb ? probsStorage : pb);
  vo.release();
  [q, k, v].forEach((t, i) => handedOver[i] && releaseValues(t, 'scaledDotProductAttention'));
  return record(out, 'scaledDotProductAttention', [q, k, v], (gy) => {
    const gyb = roundInPlace(kern, gy, bh * tq * dv, q.device);
    const vs = vo.backward();
    const vb = vs.buffer;
    if (v.requiresGrad) {
      const pbAgain = keptPb ?? droppedBf16(kern, probs, mask, n, q);
      const gv = gradTarget(v);
      kb.gemm(true, false, tk, dv, rows, 1, pbAgain.buffer, rows * tk, gyb, rows * dv, gv.beta, gv.buffer, tk * dv, kv);
      if (!keptPb) release(pbAgain);
    }
    if (!q.requiresGrad && !k.requiresGrad) {
      if (keptPb) release(keptPb);
      return vs.done();
    }
    // dProbs = gy vᵀ (through the dropout mask), then the softmax backward in float32.
    const gp = allocUninit('float32', n, q.device);
    kb.gemm(false, true, rows, tk, dv, 1, gyb, rows * dv, vb, tk * dv, 0, gp.buffer, rows * tk, kv);
    vs.done();
    if (mask) kern.binary('mul', gp.buffer, [1], mask, [1], gp.buffer, [n]);
    const gs = allocStorage('float32', n, q.device);
    const widened = keptPb ? allocUninit('float32', n, q.device) : null;
    if (widened && keptPb) {
      kern.fromBf16(keptPb.buffer, widened.buffer);
      release(keptPb);
    }
    kern.softmaxBackward(widened ? widened.buffer : probs, gp.buffer, bh * tq, tk, gs.buffer);
    const gsb = roundedStorage(kern, gs.buffer, n, q.device);
    release(gp, gs);
    if (widened) release(widened);
    if (q.requiresGrad) {
      const ks = ko.backward();
      const gq = gradTarget(q);
      kb.gemm(false, false, rows, d, tk, g.scale, gsb.buffer, rows * tk, ks.buffer, tk * d, gq.beta, gq.buffer, rows * d, kv);
      ks.done();
    }
    if (k.requiresGrad) {
      const qs = qo.backward();
      const gk = gradTarget(k);
      kb.gemm(true, false, tk, d, rows, g.scale, gsb.buffer, rows * tk, qs.buffer, rows * d, gk.beta, gk.buffer, tk * d, kv);
      qs.done();
    }
    release(gsb);
  });
}

/** The probabilities that multiply v, in bf16: probs, times the dropout mask when there is one. */
function droppedBf16(kern: Backend, probs: DeviceBuffer, mask: DeviceBuffer | null, n: number, like: Tensor): Storage {
  if (!mask) return roundedStorage(kern, probs, n, like.device);
  const dropped = allocUninit('float32', n, like.device);
  kern.binary('mul', probs, [1], mask, [1], dropped.buffer, [n]);
  const out = roundedStorage(kern, dropped.buffer, n, like.device);
  release(dropped);
  return out;
}

/** Query rows per block of the fused bf16 kernel's causal blocking (src/native/attention_bf16.cc). */
const BF16_QUERY_BLOCK = 128;

/**
 * The bf16 elements a fused bf16 attention keeps between forward and backward: the probabilities of
 * the blocks it computes, [rows, keys] per k/v slice each. Without a causal mask that is every
 * entry; with one, each block of 128 query rows of a group keeps only the keys its last row sees
 * (at t = 512: 5/8 of the square).
 */
export function bf16SavedLength(g: AttentionGeometry): number {
  const kv = g.bh / g.groups;
  if (!g.causal) return g.bh * g.tq * g.tk;
  let perGroup = 0;
  for (let i0 = 0; i0 < g.tq; i0 += BF16_QUERY_BLOCK) {
    const i1 = Math.min(g.tq, i0 + BF16_QUERY_BLOCK);
    perGroup += (i1 - i0) * Math.min(i1, g.tk);
  }
  return kv * g.groups * perGroup;
}

/**
 * attentionBf16 where the device has a fused bf16 attention kernel (native): the same arithmetic
 * (bf16 products, float32 softmax and its backward) in one call each way, over only the blocks a
 * causal mask leaves visible, with the bf16 probabilities of those blocks as the saved tensor. q, k
 * and v live as bf16Operand says (transient casts are made again in the backward).
 */
function fusedBf16(operands: Tensor[], g: AttentionGeometry, mask: DeviceBuffer | null, outShape: number[]): Tensor {
  const [q, k, v] = operands.map(gradInput);
  const kern = kernelsFor({ device: q.device, dtype: 'float32' });
  const kb = kernelsFor(operands[0]);
  const handedOver = operands.map((t) => handsOver(t));
  const [qo, ko, vo] = operands.map((t, i) => bf16Operand(t, handedOver[i]));
  const out = new Tensor(allocUninit('float32', g.bh * g.tq * g.dv, q.device), outShape);
  const probs = allocUninit('bfloat16', bf16SavedLength(g), q.device);
  kb.attention(g, qo.forward, ko.forward, vo.forward, mask, out.buffer, probs.buffer);
  [qo, ko, vo].forEach((o) => o.release());
  [q, k, v].forEach((t, i) => handedOver[i] && releaseValues(t, 'scaledDotProductAttention'));
  return record(out, 'scaledDotProductAttention', [q, k, v], (gy) => {
    const gyb = roundInPlace(kern, gy, g.bh * g.tq * g.dv, q.device);
    const [qs, ks, vs] = [qo, ko, vo].map((o) => o.backward());
    const grad = (t: Tensor): DeviceBuffer | null => (t.requiresGrad ? t.ensureGrad() : null);
    kb.attentionBackward(g, qs.buffer, ks.buffer, vs.buffer, probs.buffer, mask, gyb, grad(q), grad(k), grad(v));
    [qs, ks, vs].forEach((s) => s.done());
    release(probs);
  });
}
