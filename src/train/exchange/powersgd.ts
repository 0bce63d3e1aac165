/**
 * PowerSGD (Vogels et al. 2019) on a gradient bucket: each weight matrix M (a parameter viewed as
 * [shape[0], rest]) is sent as two thin factors instead of itself. One power-iteration step:
 *   P = M Q          (all-reduced: the sum over ranks)     rows × r
 *   P ← orthonormal columns of P (Gram-Schmidt, float64; the same on every rank: same input bits)
 *   Q = Mᵀ P         (all-reduced)                          cols × r
 *   M ← P Qᵀ         the sum over ranks, projected on span(P)
 * Q is kept for the next step (warm start; the first is drawn from a seed shared by all ranks).
 * With error feedback each rank adds what its own projection lost last time (M - P Pᵀ M) to its
 * next gradient. Vectors (biases, norms) and matrices too small to gain are all-reduced as they are,
 * in the same message as P. Bytes per matrix: (rows + cols) · r floats instead of rows · cols.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { ArenaEntry } from '../../nn/arena.js';
import { Rng } from '../../util/rng.js';
import type { Bucket } from './buckets.js';

interface Factor {
  entry: ArenaEntry;
  rows: number;
  cols: number;
  /** Warm-started right factor, cols × r, row-major. */
  q: Float32Array;
}

export class PowerSgd {
  private readonly factors = new Map<number, Factor>();
  /** Error feedback: what each rank's projection lost, arena layout. */
  private readonly residual: Float32Array;

  constructor(private readonly entries: readonly ArenaEntry[], readonly rank: number, arenaSize: number, seed = 0) {
    if (!Number.isInteger(rank) || rank < 1) throw new RangeError(`PowerSGD rank must be a positive integer (got ${rank})`);
    this.residual = new Float32Array(arenaSize);
    const rng = new Rng(seed ^ 0x5eed);
    entries.forEach((e, i) => {
      if (e.shape.length < 2) return;
      const rows = e.shape[0];
      const cols = e.size / rows;
      if ((rows + cols) * rank >= rows * cols) return; // no saving
      const q = new Float32Array(cols * rank);
      for (let j = 0; j < q.length; j++) q[j] = rng.normal();
      this.factors.set(i, { entry: e, rows, cols, q });
    });
  }

  /** What a checkpoint must hold to continue bit for bit: the residual and every warm-started Q. */
  stateBuffers(): Array<[string, Float32Array]> {
    return [['powersgd.residual', this.residual], ...[...this.factors].map(([i, f]): [string, Float32Array] => [`powersgd.q.${this.entries[i].name}`, f.q])];
  }

  /** Floats this scheme sends for a bucket (P, plain values, then Q). */
  floatsFor(bucket: Bucket): number {
    let n = 0;
    for (const i of bucket.entries) {
      const f = this.factors.get(i);
      n += f ? (f.rows + f.cols) * this.rank : this.entries[i].size;
    }
    return n;
  }

  /** Replaces the bucket's gradients (`grad` is the whole arena) by their compressed sum over ranks. */
  async allReduce(group: ProcessGroup, grad: Float32Array, bucket: Bucket): Promise<void> {
    const r = this.rank;
    const mats = bucket.entries.filter((i) => this.factors.has(i)).map((i) => this.factors.get(i)!);
    const plain = bucket.entries.filter((i) => !this.factors.has(i)).map((i) => this.entries[i]);
    const pLen = mats.reduce((s, f) => s + f.rows * r, 0);
    const first = new Float32Array(pLen + plain.reduce((s, e) => s + e.size, 0));
    let at = 0;
    for (const f of mats) {
      const m = this.compensated(grad, f.entry);
      matmul(m, f.q, first.subarray(at, at + f.rows * r), f.rows, f.cols, r);
      at += f.rows * r;
    }
    for (const e of plain) {
      first.set(grad.subarray(e.offset, e.offset + e.size), at);
      at += e.size;
    }
    await group.allReduce(first, { op: 'sum' });
    at = pLen;
    for (const e of plain) {
      grad.set(first.subarray(at, at + e.size), e.offset);
      at += e.size;
    }
    const second = new Float32Array(mats.reduce((s, f) => s + f.cols * r, 0));
    at = 0;
    let pAt = 0;
    for (const f of mats) {
      const p = first.subarray(pAt, pAt + f.rows * r);
      orthonormalize(p, f.rows, r);
      const m = grad.subarray(f.entry.offset, f.entry.offset + f.entry.size);
      const q = second.subarray(at, at + f.cols * r);
      matmulT(m, p, q, f.rows, f.cols, r);
      // Local error: what of this rank's M the projection on span(P) does not keep.
      const e = this.residual.subarray(f.entry.offset, f.entry.offset + f.entry.size);
      outer(p, q, e, f.rows, f.cols, r);
      for (let k = 0; k < e.length; k++) e[k] = m[k] - e[k];
      at += f.cols * r;
      pAt += f.rows * r;
    }
    await group.allReduce(second, { op: 'sum' });
    at = 0;
    pAt = 0;
    for (const f of mats) {
      const q = second.subarray(at, at + f.cols * r);
      outer(first.subarray(pAt, pAt + f.rows * r), q, grad.subarray(f.entry.offset, f.entry.offset + f.entry.size), f.rows, f.cols, r);
      f.q.set(q);
      at += f.cols * r;
      pAt += f.rows * r;
    }
  }

  /** The entry's gradient plus last step's error (in place). */
  private compensated(grad: Float32Array, e: ArenaEntry): Float32Array {
    const m = grad.subarray(e.offset, e.offset + e.size);
    const res = this.residual.subarray(e.offset, e.offset + e.size);
    for (let k = 0; k < m.length; k++) m[k] += res[k];
    return m;
  }
}

/** out (rows × r) = m (rows × cols) · q (cols × r). */
function matmul(m: Float32Array, q: Float32Array, out: Float32Array, rows: number, cols: number, r: number): void {
  const acc = new Float64Array(r);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let j = 0; j < cols; j++) {
      const x = m[i * cols + j];
      for (let k = 0; k < r; k++) acc[k] += x * q[j * r + k];
    }
    for (let k = 0; k < r; k++) out[i * r + k] = acc[k];
  }
}

/** out (cols × r) = mᵀ · p (rows × r). */
function matmulT(m: Float32Array, p: Float32Array, out: Float32Array, rows: number, cols: number, r: number): void {
  const acc = new Float64Array(cols * r);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const x = m[i * cols + j];
      for (let k = 0; k < r; k++) acc[j * r + k] += x * p[i * r + k];
    }
  }
  for (let k = 0; k < out.length; k++) out[k] = acc[k];
}

/** out (rows × cols) = p (rows × r) · qᵀ (q: cols × r). */
function outer(p: Float32Array, q: Float32Array, out: Float32Array, rows: number, cols: number, r: number): void {
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += p[i * r + k] * q[j * r + k];
      out[i * cols + j] = s;
    }
  }
}

/** Gram-Schmidt on the r columns of p (rows × r) in float64; a column with no new direction becomes 0. */
export function orthonormalize(p: Float32Array, rows: number, r: number): void {
  const col = Array.from({ length: r }, (_, k) => Float64Array.from({ length: rows }, (_, i) => p[i * r + k]));
  for (let k = 0; k < r; k++) {
    for (let j = 0; j < k; j++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += col[k][i] * col[j][i];
      for (let i = 0; i < rows; i++) col[k][i] -= d * col[j][i];
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += col[k][i] * col[k][i];
    norm = Math.sqrt(norm);
    const inv = norm > 1e-12 ? 1 / norm : 0;
    for (let i = 0; i < rows; i++) col[k][i] *= inv;
  }
  for (let k = 0; k < r; k++) for (let i = 0; i < rows; i++) p[i * r + k] = col[k][i];
}
