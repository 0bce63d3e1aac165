/**
 * Rotary position embeddings (Su et al. 2021) as Hugging Face's Llama computes them: inverse
 * frequencies θ^(-2i/D) for i < D/2 (Llama 3 rescales them: `llama3Frequencies`), and cos/sin
 * tables [T, D/2] of position × frequency that the rotary op (tensor/ops/rotary.ts) applies to
 * q and k [N, H, T, D]. Each step is rounded to float32 as torch computes it in float32, so the
 * tables equal transformers' to the last bit or so. The tables are constants, built once per
 * sequence length and device, in storages of their own (a training step's buffers are reused by
 * the next step: tensor/recycler.ts).
 */
import { embedding } from '../../tensor/ops/embedding.js';
import { concat, reshape, slice } from '../../tensor/ops/layout.js';
import { rotary } from '../../tensor/ops/rotary.js';
import type { Device, DeviceBuffer } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';

/** Llama 3's frequency scaling (transformers' `_compute_llama3_parameters`; attention factor 1). */
export interface Llama3Scaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** original_max_position_embeddings */
  originalContext: number;
}

const f32 = Math.fround;

/** θ^(-2i/D), i < D/2: `1 / base ** (arange(0, D, 2) / D)` in float32. */
export function inverseFrequencies(headDim: number, theta: number, scaling: Llama3Scaling | null = null): Float32Array {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) throw new Error(`rotary: head_dim must be a positive even integer, got ${headDim}`);
  if (!(theta > 0)) throw new Error(`rotary: rope_theta must be positive, got ${theta}`);
  const inv = Float32Array.from({ length: headDim / 2 }, (_, i) => f32(1 / f32(theta ** f32((2 * i) / headDim))));
  return scaling ? llama3Frequencies(inv, scaling) : inv;
}

/**
 * Llama 3's rescaling: wavelengths longer than originalContext / lowFreqFactor are divided by
 * `factor`, shorter than originalContext / highFreqFactor kept, and those between blended smoothly.
 */
export function llama3Frequencies(inv: Float32Array, s: Llama3Scaling): Float32Array {
  if (!(s.highFreqFactor > s.lowFreqFactor)) throw new Error(`rotary: llama3 scaling needs high_freq_factor > low_freq_factor, got ${s.highFreqFactor} and ${s.lowFreqFactor}`);
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = f32((2 * Math.PI) / f);
    if (wavelen > lowWavelen) return f32(f / s.factor);
    if (wavelen < highWavelen) return f;
    const smooth = f32((s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor));
    return f32(f32((1 - smooth) * f32(f / s.factor)) + f32(smooth * f));
  });
}

/** cos and sin of position t × frequency i, [T, D/2] each, in float32. */
export function rotaryTables(inv: Float32Array, length: number): { cos: Float32Array; sin: Float32Array } {
  const half = inv.length;
  const cos = new Float32Array(length * half);
  const sin = new Float32Array(length * half);
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = f32(t * inv[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * cos and sin [positions.length · repeat, D/2]: row r holds position positions[⌊r / repeat⌋], the
 * same float32 values as rotaryTables' row of that position.
 */
export function rotaryRowsAt(inv: Float32Array, positions: readonly number[], repeat: number): { cos: Float32Array; sin: Float32Array } {
  const half = inv.length;
  const cos = new Float32Array(positions.length * repeat * half);
  const sin = new Float32Array(positions.length * repeat * half);
  positions.forEach((t, n) => {
    for (let i = 0; i < half; i++) {
      const angle = f32(t * inv[i]);
      cos[n * repeat * half + i] = Math.cos(angle);
      sin[n * repeat * half + i] = Math.sin(angle);
    }
    for (let r = 1; r < repeat; r++) {
      cos.copyWithin((n * repeat + r) * half, n * repeat * half, (n * repeat + 1) * half);
      sin.copyWithin((n * repeat + r) * half, n * repeat * half, (n * repeat + 1) * half);
    }
  });
  return { cos, sin };
}

/** A head size's rotary embedding: applies the rotation to q or k, its tables cached per device. */
export class RotaryEmbedding {
  readonly inverseFrequencies: Float32Array;
  /** Per device, the tables of positions 0..capacity-1 (tablesFor). */
  private readonly tables = new Map<Device, { cos: Tensor; sin: Tensor }>();
  /** The last decode steps' per-row tables (applyDecodeRows), by device, heads and row positions. */
  private readonly decodeTables = new Map<string, { cos: Tensor; sin: Tensor }>();
  /** The last row rowAt gave, with the table it is a view of (a table rebuilt longer is a new one). */
  private lastRow: { position: number; table: Tensor; cos: DeviceBuffer; sin: DeviceBuffer } | null = null;

  constructor(readonly headDim: number, theta: number, scaling: Llama3Scaling | null = null) {
    this.inverseFrequencies = inverseFrequencies(headDim, theta, scaling);
  }

  /** x [N, H, T, D] rotated by positions offset..offset+T-1 (offset > 0: tokens decoded after a cached prefix). */
  apply(x: Tensor, offset = 0): Tensor {
    const T = x.shape[x.ndim - 2];
    const { cos, sin } = this.tablesFor(offset + T, x.device);
    if (offset === 0 && cos.shape[0] === T) return rotary(x, cos, sin);
    return rotary(x, slice(cos, 0, offset, offset + T), slice(sin, 0, offset, offset + T));
  }

  /**
   * x [N, H, T, D] with row n rotated by positions offsets[n]..offsets[n]+T-1: a batch of sequences
   * at different lengths (generation). Equal offsets rotate the batch at once.
   */
  applyRows(x: Tensor, offsets: readonly number[]): Tensor {
    if (offsets.every((o) => o === offsets[0])) return this.apply(x, offsets[0] ?? 0);
    const [N] = x.shape;
    if (offsets.length !== N) throw new Error(`rotary: ${offsets.length} row offsets for a batch of ${N}`);
    if (x.ndim === 4 && x.shape[2] === 1) return this.applyDecodeRows(x, offsets);
    const rowSize = x.size / N;
    const row = (n: number): Tensor => new Tensor(x.storage.view(n * rowSize, rowSize), [1, ...x.shape.slice(1)]);
    return concat(offsets.map((o, n) => this.apply(row(n), o)), 0);
  }

  /**
   * A decode step's x [N, H, 1, D], row n at position offsets[n], in one rotary call: x as [N·H, D]
   * (one "position" per head of each row) against tables of each row's position repeated per head.
   * Every layer of the step asks for the same tables, so the last ones are kept (two: q's heads and
   * k's); they are made on the host and adopted, never a step's recycled buffer.
   */
  private applyDecodeRows(x: Tensor, offsets: readonly number[]): Tensor {
    const [N, H, , D] = x.shape;
    const key = `${x.device}:${H}:${offsets.join(',')}`;
    let t = this.decodeTables.get(key);
    if (!t) {
      const { cos, sin } = rotaryRowsAt(this.inverseFrequencies, offsets, H);
      t = { cos: Tensor.fromHost(cos, [N * H, D / 2], false, x.device), sin: Tensor.fromHost(sin, [N * H, D / 2], false, x.device) };
      if (this.decodeTables.size >= 2) this.decodeTables.delete(this.decodeTables.keys().next().value!);
      this.decodeTables.set(key, t);
    }
    return reshape(rotary(reshape(x, [N * H, D]), t.cos, t.sin), x.shape);
  }

  /**
   * x [N, H, T, D] with each token rotated by its own position: `positions` [N·T], row-major
   * (packed windows: layers/packed_sequences.ts). Rows with the same positions share one table.
   */
  applyPositions(x: Tensor, positions: Int32Array): Tensor {
    const [N] = x.shape;
    const T = x.shape[x.ndim - 2];
    if (positions.length !== N * T) throw new Error(`rotary: ${positions.length} position ids for ${N} rows of ${T}`);
    const { cos, sin } = this.tablesFor(Math.max(...positions) + 1, x.device);
    const rowPositions = Array.from({ length: N }, (_, n) => positions.subarray(n * T, (n + 1) * T));
    const rotate = (part: Tensor, p: Int32Array): Tensor => rotary(part, embedding(cos, p, [T]), embedding(sin, p, [T]));
    const same = rowPositions.every((p) => p.every((v, t) => v === rowPositions[0][t]));
    if (same) return rotate(x, rowPositions[0]);
    return concat(rowPositions.map((p, n) => rotate(slice(x, 0, n, n + 1), p)), 0);
  }

  /** The cos and sin rows [D/2] of one position on `device`: views of tablesFor's tables, the values apply() rotates by. */
  rowAt(position: number, device: Device): { cos: DeviceBuffer; sin: DeviceBuffer } {
    const { cos, sin } = this.tablesFor(position + 1, device);
    const last = this.lastRow;
    // Every layer of a decode step asks for the same row: the views are made once a step.
    if (last?.position === position && last.table === cos) return last;
    const half = this.headDim / 2;
    this.lastRow = { position, table: cos, cos: cos.storage.view(position * half, half).buffer, sin: sin.storage.view(position * half, half).buffer };
    return this.lastRow;
  }

  /**
   * The cos/sin tables [C, D/2] for positions 0..C-1 on `device`, C ≥ length: one pair per device,
   * rebuilt at twice the length asked when a longer one is (a row's values do not depend on C). A
   * table per length once grew with every decoded token and was kept: Σ 256·L bytes a head size of
   * 64, 394 MB of arrays after 1,500 tokens of SmolLM2-135M, 8.6 GB at 8,192 positions.
   */
  tablesFor(length: number, device: Device): { cos: Tensor; sin: Tensor } {
    let t = this.tables.get(device);
    if (!t || t.cos.shape[0] < length) {
      // The exact length the first time (a training step's context), doubling past it (generation).
      const capacity = t ? Math.max(length, 2 * t.cos.shape[0]) : length;
      const { cos, sin } = rotaryTables(this.inverseFrequencies, capacity);
      const shape = [capacity, this.headDim / 2];
      // Adopted or uploaded (fromHost), never a step's recycled buffer: the tables outlive the step.
      t = { cos: Tensor.fromHost(cos, shape, false, device), sin: Tensor.fromHost(sin, shape, false, device) };
      this.tables.set(device, t);
    }
    return t;
  }
}
