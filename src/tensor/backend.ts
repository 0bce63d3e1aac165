/**
 * The backend contract.
 *
 * A backend is a set of raw kernels over flat, contiguous, row-major buffers. It knows nothing of
 * tensors, shapes-as-objects or autograd: the Tensor layer (tensor.ts and ops/) turns every op into
 * one or a few kernel calls with explicit sizes, and owns all allocation. Kernels write into `out`
 * buffers the caller provides; none allocates a result, and none returns a value to the host: a
 * scalar result (a loss, a sum of squares) lands in a one-element buffer, read when asked for.
 *
 * Backends declare the device whose buffers they run on and the dtypes they run
 * (`registerBackend` in dispatch.ts); ops pick one by the tensor's (device, dtype) and hand it
 * opaque `DeviceBuffer`s (storage.ts). Each backend casts them to what its device holds. Two
 * backends run on the cpu device today and must agree within float tolerance:
 *  - `js`: pure TypeScript. Works on Float32Array and Float64Array alike (float64 is what the
 *    finite-difference gradient checks run on).
 *  - `native`: an N-API addon over oneDNN / BLAS (float32 only). Used when it is built.
 *
 * Conventions:
 *  - Every buffer is row-major and contiguous. Image tensors are NCHW.
 *  - `Strides` arrays in `binary` and `stridedCopy` are in elements; a stride of 0 broadcasts.
 *  - Index buffers (labels, argmax, token ids) are int32 buffers on the kernel's device (storages
 *    of dtype 'int32'; an Int32Array on the cpu), like every other buffer a kernel takes.
 *  - Backward kernels accumulate (`+=`) into gradient buffers unless stated otherwise, so that a
 *    tensor used twice collects both contributions and parameter gradients can live in an arena.
 */

import type { DType, Device, DeviceBuffer, HostArray } from './storage.js';
import type { QuantBackend } from './quant/kernels.js';
import type { QuantType } from './quant/formats.js';
import type { Rng } from '../util/rng.js';

/** A buffer as a cpu backend's kernels see it (host memory). Only src/tensor/backends/ uses it. */
export type Buf = HostArray;

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'relu'
  | 'gelu' // tanh approximation, as GPT-2 / torch's approximate='tanh'
  | 'geluErf' // exact x·Φ(x), as BERT / torch's default nn.GELU()
  | 'tanh'
  | 'sigmoid'
  | 'abs';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min';

export interface Conv2dGeometry {
  batch: number;
  inC: number;
  inH: number;
  inW: number;
  outC: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  /** outH = floor((inH + 2 padH - kH) / strideH) + 1, likewise outW. */
  outH: number;
  outW: number;
}

export interface Pool2dGeometry {
  batch: number;
  channels: number;
  inH: number;
  inW: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
}

/**
 * Sizes of a scaled dot-product attention over `bh` independent (batch × query head) slices:
 * q [bh, tq, d], k [bh / groups, tk, d], v [bh / groups, tk, dv], out [bh, tq, dv], probs [bh, tq, tk].
 */
export interface AttentionGeometry {
  bh: number;
  /**
   * Query slices per key/value slice (grouped-query attention): query slice b reads k/v slice
   * floor(b / groups), as Hugging Face's repeat_kv. The `groups` query slices of one k/v slice are
   * consecutive, so they form one [groups · tq, d] block against it. 1: one k/v slice per query slice.
   */
  groups: number;
  tq: number;
  tk: number;
  d: number;
  dv: number;
  /** Multiplies q·kᵀ before the softmax (usually 1/sqrt(d)). */
  scale: number;
  /** Query i sees keys j <= i only (torch's is_causal: a top-left aligned lower triangle). */
  causal: boolean;
  /**
   * Positions each k/v slice holds in memory, of which the first tk are read (default tk: packed
   * slices). A KV cache's [Hkv, capacity, d] storage is read in place with kvCapacity = capacity:
   * k slice s starts at s · kvCapacity · d, v slice s at s · kvCapacity · dv.
   */
  kvCapacity?: number;
}

/** Positions between the starts of consecutive k/v slices: `kvCapacity` (checked against tk), or tk. */
export function kvSliceLength(g: AttentionGeometry): number {
  const capacity = g.kvCapacity ?? g.tk;
  if (capacity < g.tk) throw new RangeError(`attention: kvCapacity ${capacity} is below tk ${g.tk}`);
  return capacity;
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** true: AdamW (decoupled decay, p -= lr*wd*p); false: Adam (L2 added to the gradient). */
  decoupled: boolean;
  /** 1-based step count, for bias correction. */
  step: number;
}

export interface SgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  /** true on the first step: the momentum buffer is set to the gradient rather than blended. */
  firstStep: boolean;
}

/** What a backend is, beside its kernels. */
export interface BackendInfo {
  /** A unique name ('js', 'native', later 'webgpu'); never compared by the op layer. */
  readonly name: string;
  /** The device whose buffers the kernels take. */
  readonly device: Device;
  /** The dtypes the kernels run. */
  readonly dtypes: readonly DType[];
  /** Human-readable kernel libraries in use, e.g. "oneDNN 3.0 + OpenBLAS", "pure TypeScript". */
  readonly description: string;
  /** The GPU adapter the kernels run on (a GPU backend only): its name, and whether it is a software one such as SwiftShader. */
  readonly adapter?: { readonly name: string; readonly software: boolean };
  /** Whether more than one thread can run a kernel (thread_calibration.ts times only such a backend). */
  readonly multithreaded: boolean;
  setThreads(n: number): void;
  getThreads(): number;
}

/** The kernels over buffers of type B. */
export interface Kernels<B> {

  // ---- dense linear algebra ------------------------------------------------------------------
  /**
   * Batched GEMM: for b in [0, batch): C_b = alpha * op(A_b) @ op(B_b) + beta * C_b, with
   * op(X) = X^T when trans is set. op(A_b) is M×K, op(B_b) is K×N, C_b is M×N, all contiguous.
   * A_b starts at b*strideA (strideA = 0 broadcasts A over the batch), likewise B and C.
   * beta = 0 must ignore C's previous contents (even NaN). An optional `bias` [N] is added to
   * every row of every C_b (beta must then be 0; C needs strideC > 0 when batch > 1): a linear
   * layer's bias, which oneDNN fuses into the product instead of a broadcast copy first.
   */
  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: B, strideA: number, B: B, strideB: number, beta: number, C: B, strideC: number,
    batch: number, bias?: B | null,
  ): void;

  // ---- bfloat16 compute (docs/PRECISION.md) ---------------------------------------------------
  // A bfloat16 buffer holds the upper 16 bits of float32 values. Every backend rounds float32 to
  // bfloat16 the same way (round to nearest, ties to even; NaN stays a quiet NaN), and the bf16
  // kernels below multiply bf16 operands exactly (a product of two bf16 values fits a float32) and
  // accumulate in float32, so backends agree within summation-order differences.
  /** out[i] = bf16(x[i]): x float32, out bfloat16, over out.length elements. */
  toBf16(x: B, out: B): void;
  /** out[i] = x[i] widened (exact): x bfloat16, out float32, over out.length elements. */
  fromBf16(x: B, out: B): void;
  /**
   * Elements [offset, offset + length) of a bfloat16 view over float32 buffer x's bytes (sharing its
   * memory): bf16 element i is bytes [2i, 2i + 2) of x. For rounding a dead float32 buffer into its
   * own memory (ops/bf16.ts `roundInPlace`).
   */
  bf16View(x: B, offset: number, length: number): B;
  /**
   * Softmax of each row of `slices` [rows, cols] blocks where row r sees columns 0..r only (a
   * causal attention's top-left triangle, rows <= cols); hidden entries are exactly 0.
   */
  softmaxCausal(x: B, slices: number, rows: number, cols: number, out: B): void;

  /** Elements [offset, offset + length) of x, sharing its memory (no copy). */
  subBuffer(x: B, offset: number, length: number): B;

  // ---- elementwise ---------------------------------------------------------------------------
  /** out[i] = op(x[i]) for i < out.length. */
  unary(op: UnaryOp, x: B, out: B): void;
  /**
   * gx[i] += gy[i] * op'(x[i]); y = op(x) is passed too since some derivatives are cheaper from it
   * (exp, sqrt, tanh, sigmoid).
   */
  unaryBackward(op: UnaryOp, x: B, y: B, gy: B, gx: B): void;
  /**
   * Broadcasting binary op over `shape` (the output shape). aStrides/bStrides give, per output
   * dimension, the element stride into a/b (0 where that operand is broadcast).
   */
  binary(op: BinaryOp, a: B, aStrides: number[], b: B, bStrides: number[], out: B, shape: number[]): void;
  /** out[i] = x[i] * scale + shift. (x may equal out.) */
  affine(x: B, scale: number, shift: number, out: B): void;
  /** out[i] = x[i] ** p */
  powScalar(x: B, p: number, out: B): void;
  /** y[i] += alpha * x[i] */
  axpy(alpha: number, x: B, y: B): void;
  /**
   * y[i] += x[i] on the calling thread only, never forking a team: the all-reduce sums received
   * gradients with it beside the event loop's other work (src/comm/collectives/reduce_ops.ts).
   */
  addInto(y: B, x: B): void;
  fill(x: B, value: number): void;
  /**
   * A dropout mask: out[i] = 0 where element i's Philox-4x32-10 word under key (k0, k1) is below
   * `threshold`, else `keep` (src/util/philox.ts dropoutWord, dropThreshold). Counter-based: every
   * element is drawn on its own, so the GPU draws in parallel and every backend gives the same bits.
   */
  dropoutMask(k0: number, k1: number, threshold: number, keep: number, out: B): void;
  /**
   * out[0] = (sum of x[i]^2, in float64) / divisor, rounded to out's dtype: a value left on the
   * device until the host asks (a loss, a gradient norm), never a number returned to the host.
   */
  sumSquares(x: B, divisor: number, out: B): void;
  /** With c = 2·gy[0]/n: gPred += c·diff, gTarget −= c·diff (a null one is skipped): mseLoss's backward. */
  mseLossBackward(diff: B, gy: B, n: number, gPred: B | null, gTarget: B | null): void;
  /** x[i] = std · rng.normal(), in order (Tensor.randn, initialisers): the Rng's draws, bit for bit. */
  fillNormal(x: B, rng: Rng, std: number): void;
  /** x[i] = low + (high - low) · rng.uniform(), in order (Tensor.uniform, initialisers). */
  fillUniform(x: B, rng: Rng, low: number, high: number): void;
  /**
   * Backward of a broadcasting pow over same-sized buffers (a, b expanded to y's shape):
   * ga[i] = gy·b·a^(b-1) (0 where b = 0), gb[i] = gy·y·ln a (0 where a <= 0); a null one is skipped.
   * Both are overwritten.
   */
  powBackward(a: B, b: B, y: B, gy: B, ga: B | null, gb: B | null): void;

  // ---- layout ----------------------------------------------------------------------------------
  /**
   * Copies the strided view (src starting at srcOffset, with srcStrides over `shape`) into dst at
   * dstOffset with dstStrides. Used for transpose/permute, slice and concat (both directions).
   * When `accumulate` is set, dst += view instead of dst = view (backward of slice/concat).
   */
  stridedCopy(
    src: B, srcOffset: number, srcStrides: number[], dst: B, dstOffset: number,
    dstStrides: number[], shape: number[], accumulate: boolean,
  ): void;

  // ---- reductions over one axis of a [outer, n, inner] view -----------------------------------
  /** out[o, i] = sum_k x[o, k, i] */
  reduceSum(x: B, outer: number, n: number, inner: number, out: B): void;
  /** out[o, i] = max_k x[o, k, i]; argmax[o, i] = first k attaining it. */
  reduceMax(x: B, outer: number, n: number, inner: number, out: B, argmax: B): void;
  /** gx[o, argmax[o, i], i] += gy[o, i]: the gradient of reduceMax. */
  reduceMaxBackward(gy: B, argmax: B, outer: number, n: number, inner: number, gx: B): void;

  // ---- softmax family over the last axis of a [rows, cols] view --------------------------------
  softmax(x: B, rows: number, cols: number, out: B): void;
  /** gx += y * (gy - sum(gy * y)) per row */
  softmaxBackward(y: B, gy: B, rows: number, cols: number, gx: B): void;
  logSoftmax(x: B, rows: number, cols: number, out: B): void;
  /** gx += gy - exp(y) * sum(gy) per row (y = log-softmax output) */
  logSoftmaxBackward(y: B, gy: B, rows: number, cols: number, gx: B): void;
  /**
   * Fused softmax + cross-entropy over rows with integer labels. Returns the mean loss over rows
   * whose label is >= 0 (a negative label skips its row; ops/loss.ts maps the ignore label to -1).
   * Writes probs = probScale · softmax(logits) into `probs` (used by the backward; the scale rides
   * along the normalising multiply for free, so the loss's 1/rows need not cost a pass of its own
   * later). On the host backends probs may be logits itself (in place; ops/loss.ts). `smoothing` ε
   * is torch's label_smoothing: a row's loss is (1 − ε)·(lse − x[label]) + ε·(lse − mean(x)).
   */
  softmaxCrossEntropy(logits: B, labels: B, rows: number, cols: number, probs: B, probScale: number, loss: B, smoothing?: number): void;
  /**
   * scaledProbs (probs / counted, as softmaxCrossEntropy wrote them) := g · scaledProbs −
   * (g / counted) · target, rows with a negative label zeroed, in place: the gradient of g · mean
   * cross-entropy (g is gy[0], read by the kernel). The target is onehot(labels), or with
   * `smoothing` ε (1 − ε)·onehot + ε / cols. A backend computes g / counted in its own precision
   * (native: float32, like its other scalar arguments).
   */
  crossEntropyGradientInPlace(scaledProbs: B, labels: B, rows: number, cols: number, gy: B, counted: number, smoothing?: number): void;
  /** gLogits += scale * (probs - onehot(labels)); rows with label -1 get nothing. */
  softmaxCrossEntropyBackward(probs: B, labels: B, rows: number, cols: number, scale: number, gLogits: B): void;

  // ---- convolution and pooling (NCHW) --------------------------------------------------------
  /** y = conv(x, w) + bias; w is [outC, inC, kH, kW]; bias may be null. y is overwritten. */
  conv2d(g: Conv2dGeometry, x: B, w: B, bias: B | null, y: B): void;
  /**
   * Accumulates into gw, gBias (may be null) and gx (may be null); with setGx, gx is overwritten
   * instead (its old contents are never read, so it need not be zeroed).
   */
  conv2dBackward(
    g: Conv2dGeometry, x: B, w: B, gy: B, gx: B | null, gw: B, gBias: B | null, setGx?: boolean,
  ): void;
  /** Padding counts as -inf. argmax holds, per output, the flat index into x's H*W plane. */
  maxPool2d(g: Pool2dGeometry, x: B, y: B, argmax: B): void;
  /** maxPool2d over relu(x); argmax is -1 where the window's maximum is 0 (no gradient flows there). */
  maxPool2dRelu(g: Pool2dGeometry, x: B, y: B, argmax: B): void;
  /** Accumulates into gx; argmax -1 passes nothing. */
  maxPool2dBackward(g: Pool2dGeometry, gy: B, argmax: B, gx: B): void;
  /** gx = the gradient: every cell written, none read (a gradient buffer nothing accumulated into yet). */
  maxPool2dBackwardSet(g: Pool2dGeometry, gy: B, argmax: B, gx: B): void;
  /** Average over the window; padding counts as zero and is included in the divisor (torch's count_include_pad=True). */
  avgPool2d(g: Pool2dGeometry, x: B, y: B): void;
  avgPool2dBackward(g: Pool2dGeometry, gy: B, gx: B): void;

  // ---- normalisation -----------------------------------------------------------------------------
  /**
   * Normalises x viewed as [outer, C, inner] per channel c over (outer, inner) — batch-norm's
   * statistics. training: uses batch statistics, writes them to mean/invStd, and updates
   * runningMean/runningVar (unbiased variance) with `momentum` (torch convention:
   * running = (1-momentum)*running + momentum*batch). Not training: uses the running statistics
   * (mean/invStd are written from them). y = (x - mean) * invStd * gamma + beta, or relu of that
   * with `relu` (as the relu unary kernel: NaN → 0).
   */
  batchNorm(
    x: B, outer: number, C: number, inner: number, gamma: B, beta: B, runningMean: B,
    runningVar: B, training: boolean, momentum: number, eps: number, y: B, mean: B, invStd: B,
    relu?: boolean,
  ): void;
  /**
   * Backward of the training-mode batch-norm (batch statistics). Accumulates gGamma, gBeta and gx;
   * with setGx, gx is overwritten instead (never read). With reluY (the forward's output of a
   * batch-norm + relu), gy counts only where reluY > 0; reluY may be float32 or, on backends with
   * bf16 kernels, a bfloat16 copy of that output (the same cells > 0 but for float32 denormals,
   * which bf16 rounds to zero).
   */
  batchNormBackward(
    x: B, outer: number, C: number, inner: number, gamma: B, mean: B, invStd: B, gy: B,
    gx: B, gGamma: B, gBeta: B, setGx?: boolean, reluY?: B | null,
  ): void;
  /** Per row of [rows, cols]: y = (x - mean) * invStd * gamma + beta. Writes mean/invStd [rows]. */
  /**
   * Backward of eval-mode batch-norm (fixed statistics: y = (x - mean)·invStd·gamma + beta per
   * channel): gx += gy·gamma·invStd (gx null: x is frozen), gGamma += gy·(x - mean)·invStd, gBeta += gy.
   */
  batchNormEvalBackward(x: B, outer: number, C: number, inner: number, gamma: B, mean: B, invStd: B,
    gy: B, gx: B | null, gGamma: B, gBeta: B): void;
  layerNorm(x: B, rows: number, cols: number, gamma: B, beta: B, eps: number, y: B, mean: B, invStd: B): void;
  layerNormBackward(
    x: B, rows: number, cols: number, gamma: B, mean: B, invStd: B, gy: B, gx: B,
    gGamma: B, gBeta: B,
  ): void;
  /**
   * RMSNorm per row of [rows, cols] (Llama's norm): invRms[r] = 1 / sqrt(mean_j x[r, j]² + eps),
   * y[r, j] = x[r, j] · invRms[r] · weight[j]. y and invRms [rows] are overwritten.
   */
  rmsNorm(x: B, rows: number, cols: number, weight: B, eps: number, y: B, invRms: B): void;
  /**
   * Backward of `rmsNorm` from its saved invRms: with x̂ = x·invRms and g = gy·weight,
   * gx += invRms · (g − x̂ · mean_j(g·x̂)), gWeight += Σ_rows gy·x̂. A null gradient buffer is
   * skipped (that input is frozen).
   */
  rmsNormBackward(x: B, rows: number, cols: number, weight: B, invRms: B, gy: B, gx: B | null, gWeight: B | null): void;

  // ---- rotary positions and gated activations (the Llama family) ----------------------------------
  /**
   * Rotary position embedding in Hugging Face's rotate_half layout over x [slices, t, d] (d even,
   * h = d/2) with cos, sin [t, h]: out[i] = x[i]·cos − x[i+h]·sin, out[i+h] = x[i+h]·cos + x[i]·sin
   * for i < h. out is overwritten (it must not be x).
   */
  rotary(x: B, cos: B, sin: B, slices: number, t: number, d: number, out: B): void;
  /** Backward of `rotary` (the inverse rotation of gy): gx[i] += gy[i]·cos + gy[i+h]·sin, gx[i+h] += gy[i+h]·cos − gy[i]·sin. */
  rotaryBackward(gy: B, cos: B, sin: B, slices: number, t: number, d: number, gx: B): void;
  /** out[i] = silu(gate[i]) · up[i] with silu(z) = z·sigmoid(z): a SwiGLU MLP's gated product. out is overwritten. */
  siluMul(gate: B, up: B, out: B): void;
  /**
   * Backward of `siluMul` from its inputs (no silu(gate) is kept): with s = sigmoid(gate),
   * gGate += gy·up·s·(1 + gate·(1 − s)), gUp += gy·gate·s. A null gradient buffer is skipped.
   */
  siluMulBackward(gate: B, up: B, gy: B, gGate: B | null, gUp: B | null): void;

  // ---- embedding -------------------------------------------------------------------------------
  /** out[i, :] = table[ids[i], :] for i < ids.length; table is [vocab, dim]. */
  embedding(table: B, ids: B, dim: number, out: B): void;
  /** gTable[ids[i], :] += gy[i, :] */
  embeddingBackward(gy: B, ids: B, dim: number, gTable: B): void;

  // ---- attention ----------------------------------------------------------------------------
  /**
   * Fused scaled dot-product attention: probs = softmax(scale · q kᵀ) per row (entries a causal
   * mask hides are exactly 0), out = (probs ∘ dropMask) v. `dropMask` (same shape as probs,
   * values 0 or 1/(1-p)) is attention dropout; null means none. Writes out and probs.
   */
  attention(g: AttentionGeometry, q: B, k: B, v: B, dropMask: B | null, out: B, probs: B): void;
  /**
   * Backward of `attention` from the saved probs. Accumulates into gq, gk, gv (gk and gv sum over
   * the query slices of a group); a null gradient buffer is skipped (that input is frozen).
   */
  attentionBackward(
    g: AttentionGeometry, q: B, k: B, v: B, probs: B, dropMask: B | null, gy: B,
    gq: B | null, gk: B | null, gv: B | null,
  ): void;

  // ---- optimizers over flat arenas (or ranges of them) ----------------------------------------
  /** torch.optim.SGD semantics. `momentumBuf` may be null when momentum = 0. */
  sgdStep(param: B, grad: B, momentumBuf: B | null, h: SgdHyper): void;
  /** torch.optim.Adam / AdamW semantics. */
  adamStep(param: B, grad: B, m: B, v: B, h: AdamHyper): void;
}

/**
 * Optional, a cpu backend's: a host row's argmax (generate/sampling.ts argmax): the index of its
 * first largest value, NaN never taken unless the row starts with one (then 0), 0 for an empty row.
 */
export interface RowArgmax<B> {
  rowArgmax(x: B): number;
}

/** A backend as the op layer sees it: kernels over opaque device buffers. */
export interface Backend extends BackendInfo, Kernels<DeviceBuffer>, Partial<DecodeAttention<DeviceBuffer>>, Partial<HugePages<DeviceBuffer>>,
  Partial<FusedDecode<DeviceBuffer>>, Partial<RowArgmax<DeviceBuffer>> {
  readonly bfloat16?: Bf16Entries<DeviceBuffer>;
}

/** A cpu backend as written: kernels over host arrays (cast to a Backend in src/tensor/backends/). */
export interface HostBackend extends BackendInfo, Kernels<HostArray>, Partial<DecodeAttention<HostArray>>, Partial<HugePages<HostArray>>,
  Partial<QuantBackend<HostArray>>, Partial<FusedDecode<HostArray>>, Partial<RowArgmax<HostArray>> {
  readonly bfloat16?: Bf16Entries<HostArray>;
}

/**
 * A backend's bfloat16 entries of ordinary ops (bf16 is a dtype: dispatch.ts registers them as the
 * ops' 'bfloat16' kernels; docs/PRECISION.md): the float32 contract's calls with bfloat16 operands
 * (gemm's A and B, conv2d's and conv2dBackward's x and w) and everything else float32: C, bias, y,
 * the gradients, and the accumulation. conv2dBackward's gy is float32 too: the kernel rounds it to
 * bfloat16 itself (each backend in its own pass or layout change).
 *
 * Optional (kernel_names.ts BF16_OPTIONAL_ENTRIES): a fused bf16 attention. Its q, k, v and the
 * backward's gy are bfloat16; out and the gradients float32 (accumulated into); `probs` is a
 * bfloat16 buffer of the kernel's own saved layout, attention.ts bf16SavedLength(g) elements.
 */
export type Bf16Entries<B> = Pick<Kernels<B>, 'gemm' | 'conv2d' | 'conv2dBackward'> & Partial<Bf16Packing<B>> & Partial<DecodeAttention<B>>
  & Partial<Pick<Kernels<B>, 'attention' | 'attentionBackward'>> & Partial<WidenedThin<B>>;

/**
 * Optional: a few rows of float32 x times a weight held in bfloat16, widened where it is read
 * (ops/linear_bf16_weight.ts): y [M, N] = x [M, K] · widen(W [N, K])ᵀ (+ bias), float32 sums;
 * false (y untouched) where M is past the kernel's rows: the op's tiles + float32 GEMM serve.
 */
export interface WidenedThin<B> {
  linearWidenedThin(M: number, N: number, K: number, x: B, w: B, y: B, bias: B | null): boolean;
}

/**
 * Optional: backs a long-lived host buffer (a model's weights held for inference) with huge pages
 * where the system can; returns the bytes advised (0: none). The values are kept.
 */
export interface HugePages<B> {
  adviseHugePages(x: B): number;
}

/**
 * Optional: a decode step's attention over a KV cache (generate/kv_cache.ts), one call per
 * sequence. g has tq = 1 and no causal mask; q [bh, d], the new position's kNew [bh / groups, d] and
 * vNew [.., dv] and out [bh, dv] are float32; k and v are the cache's [bh / groups, kvCapacity, d]
 * storage, into whose position tk − 1 kNew and vNew are stored before positions [0, tk) are read.
 * A backend's own entry takes a float32 cache, with the fused attention's arithmetic; its bfloat16
 * entry (Bf16Entries) a bfloat16 cache, with the bf16 attention op's arithmetic on q, k, v cast to
 * bf16: bf16 products summed in float32, the probabilities rounded to bf16 before the product with v.
 */
export interface DecodeAttention<B> {
  attentionDecode(g: AttentionGeometry, q: B, kNew: B, vNew: B, k: B, v: B, out: B): void;
}

/**
 * One Llama decoder block for one decode position of one sequence (nn/layers/llama_fused_decode.ts):
 * out = h + mlp(norm(h)), h = x + o_proj(attention(norm(x))), its seven weights quantized,
 * float32 or (a bf16 step) bf16, with a KV cache [kvHeads, capacity, headDim] (float32, or bf16)
 * that receives the position's k and v. The arithmetic is the ops' that the block would run one by one (rmsNorm, linear, Qwen3's
 * per-head norms, rotary, attentionDecode, siluMul, add), so the output is theirs.
 */
export interface LlamaDecodeBlock<B> {
  width: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  /** Positions the cache holds once this one is stored (its position + 1), and the positions it has room for. */
  positions: number;
  capacity: number;
  eps: number;
  /** The attention's score scale. */
  scale: number;
  x: B;
  out: B;
  inNorm: B;
  postNorm: B;
  qNorm: B | null;
  kNorm: B | null;
  /**
   * q, k, v, o, gate, up and down's formats and weights (blocks, float32 values, or a bf16 step's
   * bf16 weights, x rounded to bf16 for them as autocast rounds it), in that order.
   */
  formats: readonly (QuantType | 'float32' | 'bfloat16')[];
  weights: readonly B[];
  /** q, k and v's biases (Qwen2), or null. */
  biases: readonly (B | null)[];
  /** The position's rotary row: cos and sin [headDim / 2]. */
  cos: B;
  sin: B;
  /** The cache [kvHeads, capacity, headDim]: float32, or bf16 (`kvBf16`: a bf16 step's, the backend's bf16 decode attention's; bf16 views). */
  kCache: B;
  vCache: B;
  kvBf16: boolean;
}

/** What a block's decode step reads that does not change from step to step: LlamaDecodeBlock's weights, norms and biases. */
export type LlamaDecodeWeights<B> = Pick<LlamaDecodeBlock<B>, 'inNorm' | 'postNorm' | 'qNorm' | 'kNorm' | 'formats' | 'weights' | 'biases'>;

/** The shape every block of a stack shares: LlamaDecodeBlock's sizes, eps and score scale. */
export type LlamaStackShape = Pick<LlamaDecodeBlock<unknown>, 'width' | 'heads' | 'kvHeads' | 'headDim' | 'intermediate' | 'eps' | 'scale'>;

declare const decodePlanBrand: unique symbol;
/** A stack of blocks' weights the backend has checked once and holds (llamaDecodePlan); opaque above it. */
export interface LlamaDecodePlan {
  readonly [decodePlanBrand]: true;
}

/** One decode step of a whole stack: every block's cache at the same positions, one rotary row, the first block's input and the last one's output. */
export interface LlamaDecodeStep<B> extends Pick<LlamaDecodeBlock<B>, 'positions' | 'capacity' | 'kvBf16' | 'x' | 'out' | 'cos' | 'sin'> {
  kCaches: readonly B[];
  vCaches: readonly B[];
}

/** Optional: a Llama block's decode step in one call (LlamaDecodeBlock), and a whole stack's. */
export interface FusedDecode<B> {
  llamaDecodeLayer(block: LlamaDecodeBlock<B>): void;
  /**
   * The blocks' weights checked once and held for llamaDecodeStack. The caller keeps every buffer
   * alive while it keeps the plan, and makes a new plan when any of them changes.
   */
  llamaDecodePlan?(shape: LlamaStackShape, blocks: readonly LlamaDecodeWeights<B>[]): LlamaDecodePlan;
  /** Every block of the plan in turn, in one call: the same values as llamaDecodeLayer block by block. */
  llamaDecodeStack?(plan: LlamaDecodePlan, step: LlamaDecodeStep<B>): void;
}

declare const packedWeightBrand: unique symbol;
/** A weight held in the backend's own product layout (ops/packed_weights.ts); opaque above it. */
export interface PackedWeight {
  readonly [packedWeightBrand]: true;
}

/**
 * Optional bf16 products against a weight laid out once for the backend's kernels (oneDNN's
 * blocked layout on the native backend) instead of on every call. W is bf16 [rows, cols] row-major.
 */
export interface Bf16Packing<B> {
  /**
   * W packed for C = A·Wᵀ (`forward`: a linear layer's x·Wᵀ, K = cols, N = rows) or C = A·W (K =
   * rows, N = cols), laid out as a product of M rows wants it; null where the backend has no faster
   * kernel for it.
   */
  packWeight(w: B, rows: number, cols: number, forward: boolean, M: number): PackedWeight | null;
  /**
   * C [M, N] = A [M, K] (bf16) times the packed weight + beta·C (+ bias [N], beta then 0), float32
   * C; false (C untouched) where no fast kernel takes this M.
   */
  gemmPacked(M: number, A: B, packed: PackedWeight, beta: number, C: B, bias: B | null): boolean;
}
