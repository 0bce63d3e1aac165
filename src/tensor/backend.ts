/**
 * The backend contract.
 *
 * A backend is a set of raw kernels over flat, contiguous, row-major buffers. It knows nothing of
 * tensors, shapes-as-objects or autograd: the Tensor layer (tensor.ts and ops/) turns every op into
 * one or a few kernel calls with explicit sizes, and owns all allocation. Kernels write into `out`
 * buffers the caller provides; none allocates a result (a few return a scalar).
 *
 * Two backends implement this interface and must agree within float tolerance:
 *  - `js`: pure TypeScript. Works on Float32Array and Float64Array alike (float64 is what the
 *    finite-difference gradient checks run on).
 *  - `native`: an N-API addon over oneDNN / BLAS (float32 only). Used when it is built.
 *
 * Conventions:
 *  - Every buffer is row-major and contiguous. Image tensors are NCHW.
 *  - `Strides` arrays in `binary` and `stridedCopy` are in elements; a stride of 0 broadcasts.
 *  - `Index` buffers (labels, argmax, token ids) are Int32Array.
 *  - Backward kernels accumulate (`+=`) into gradient buffers unless stated otherwise, so that a
 *    tensor used twice collects both contributions and parameter gradients can live in an arena.
 */

export type Buf = Float32Array | Float64Array;

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
 * Sizes of a scaled dot-product attention over `bh` independent (batch × head) slices:
 * q [bh, tq, d], k [bh, tk, d], v [bh, tk, dv], out [bh, tq, dv], probs [bh, tq, tk].
 */
export interface AttentionGeometry {
  bh: number;
  tq: number;
  tk: number;
  d: number;
  dv: number;
  /** Multiplies q·kᵀ before the softmax (usually 1/sqrt(d)). */
  scale: number;
  /** Query i sees keys j <= i only (torch's is_causal: a top-left aligned lower triangle). */
  causal: boolean;
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

export interface Backend {
  readonly name: 'js' | 'native';
  /** Human-readable kernel libraries in use, e.g. "oneDNN 3.0 + OpenBLAS", "pure TypeScript". */
  readonly description: string;
  setThreads(n: number): void;
  getThreads(): number;

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
    A: Buf, strideA: number, B: Buf, strideB: number, beta: number, C: Buf, strideC: number,
    batch: number, bias?: Buf | null,
  ): void;

  // ---- elementwise ---------------------------------------------------------------------------
  /** out[i] = op(x[i]) for i < out.length. */
  unary(op: UnaryOp, x: Buf, out: Buf): void;
  /**
   * gx[i] += gy[i] * op'(x[i]); y = op(x) is passed too since some derivatives are cheaper from it
   * (exp, sqrt, tanh, sigmoid).
   */
  unaryBackward(op: UnaryOp, x: Buf, y: Buf, gy: Buf, gx: Buf): void;
  /**
   * Broadcasting binary op over `shape` (the output shape). aStrides/bStrides give, per output
   * dimension, the element stride into a/b (0 where that operand is broadcast).
   */
  binary(op: BinaryOp, a: Buf, aStrides: number[], b: Buf, bStrides: number[], out: Buf, shape: number[]): void;
  /** out[i] = x[i] * scale + shift. (x may equal out.) */
  affine(x: Buf, scale: number, shift: number, out: Buf): void;
  /** out[i] = x[i] ** p */
  powScalar(x: Buf, p: number, out: Buf): void;
  /** y[i] += alpha * x[i] */
  axpy(alpha: number, x: Buf, y: Buf): void;
  /**
   * y[i] += x[i] on the calling thread only, never forking a team: the all-reduce sums received
   * gradients with it beside the event loop's other work (src/comm/collectives/reduce_ops.ts).
   */
  addInto(y: Buf, x: Buf): void;
  fill(x: Buf, value: number): void;
  /**
   * A dropout mask: out[i] = 0 with probability p (u < p for u uniform in [0, 1)), else `keep`,
   * drawing u from the xoshiro128** stream whose four state words `state` holds (src/util/rng.ts's
   * generator, as Rng.uniform() draws them; the words are advanced in place).
   */
  dropoutMask(state: Int32Array, p: number, keep: number, out: Buf): void;
  /** sum of x[i]^2 (in float64). */
  sumSquares(x: Buf): number;

  // ---- layout ----------------------------------------------------------------------------------
  /**
   * Copies the strided view (src starting at srcOffset, with srcStrides over `shape`) into dst at
   * dstOffset with dstStrides. Used for transpose/permute, slice and concat (both directions).
   * When `accumulate` is set, dst += view instead of dst = view (backward of slice/concat).
   */
  stridedCopy(
    src: Buf, srcOffset: number, srcStrides: number[], dst: Buf, dstOffset: number,
    dstStrides: number[], shape: number[], accumulate: boolean,
  ): void;

  // ---- reductions over one axis of a [outer, n, inner] view -----------------------------------
  /** out[o, i] = sum_k x[o, k, i] */
  reduceSum(x: Buf, outer: number, n: number, inner: number, out: Buf): void;
  /** out[o, i] = max_k x[o, k, i]; argmax[o, i] = first k attaining it. */
  reduceMax(x: Buf, outer: number, n: number, inner: number, out: Buf, argmax: Int32Array): void;

  // ---- softmax family over the last axis of a [rows, cols] view --------------------------------
  softmax(x: Buf, rows: number, cols: number, out: Buf): void;
  /** gx += y * (gy - sum(gy * y)) per row */
  softmaxBackward(y: Buf, gy: Buf, rows: number, cols: number, gx: Buf): void;
  logSoftmax(x: Buf, rows: number, cols: number, out: Buf): void;
  /** gx += gy - exp(y) * sum(gy) per row (y = log-softmax output) */
  logSoftmaxBackward(y: Buf, gy: Buf, rows: number, cols: number, gx: Buf): void;
  /**
   * Fused softmax + cross-entropy over rows with integer labels. Returns the mean loss over rows
   * whose label is >= 0 (label -1 is ignored, like torch's ignore_index). Writes
   * probs = probScale · softmax(logits) into `probs` (used by the backward; the scale rides along
   * the normalising multiply for free, so the loss's 1/rows need not cost a pass of its own later).
   */
  softmaxCrossEntropy(logits: Buf, labels: Int32Array, rows: number, cols: number, probs: Buf, probScale?: number): number;
  /** gLogits += scale * (probs - onehot(labels)); rows with label -1 get nothing. */
  softmaxCrossEntropyBackward(probs: Buf, labels: Int32Array, rows: number, cols: number, scale: number, gLogits: Buf): void;

  // ---- convolution and pooling (NCHW) --------------------------------------------------------
  /** y = conv(x, w) + bias; w is [outC, inC, kH, kW]; bias may be null. y is overwritten. */
  conv2d(g: Conv2dGeometry, x: Buf, w: Buf, bias: Buf | null, y: Buf): void;
  /**
   * Accumulates into gw, gBias (may be null) and gx (may be null); with setGx, gx is overwritten
   * instead (its old contents are never read, so it need not be zeroed).
   */
  conv2dBackward(
    g: Conv2dGeometry, x: Buf, w: Buf, gy: Buf, gx: Buf | null, gw: Buf, gBias: Buf | null, setGx?: boolean,
  ): void;
  /** Padding counts as -inf. argmax holds, per output, the flat index into x's H*W plane. */
  maxPool2d(g: Pool2dGeometry, x: Buf, y: Buf, argmax: Int32Array): void;
  /** maxPool2d over relu(x); argmax is -1 where the window's maximum is 0 (no gradient flows there). */
  maxPool2dRelu(g: Pool2dGeometry, x: Buf, y: Buf, argmax: Int32Array): void;
  /** Accumulates into gx; argmax -1 passes nothing. */
  maxPool2dBackward(g: Pool2dGeometry, gy: Buf, argmax: Int32Array, gx: Buf): void;
  /** gx = the gradient: every cell written, none read (a gradient buffer nothing accumulated into yet). */
  maxPool2dBackwardSet(g: Pool2dGeometry, gy: Buf, argmax: Int32Array, gx: Buf): void;
  /** Average over the window; padding counts as zero and is included in the divisor (torch's count_include_pad=True). */
  avgPool2d(g: Pool2dGeometry, x: Buf, y: Buf): void;
  avgPool2dBackward(g: Pool2dGeometry, gy: Buf, gx: Buf): void;

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
    x: Buf, outer: number, C: number, inner: number, gamma: Buf, beta: Buf, runningMean: Buf,
    runningVar: Buf, training: boolean, momentum: number, eps: number, y: Buf, mean: Buf, invStd: Buf,
    relu?: boolean,
  ): void;
  /**
   * Backward of the training-mode batch-norm (batch statistics). Accumulates gGamma, gBeta and gx;
   * with setGx, gx is overwritten instead (never read). With reluY (the forward's output of a
   * batch-norm + relu), gy counts only where reluY > 0.
   */
  batchNormBackward(
    x: Buf, outer: number, C: number, inner: number, gamma: Buf, mean: Buf, invStd: Buf, gy: Buf,
    gx: Buf, gGamma: Buf, gBeta: Buf, setGx?: boolean, reluY?: Buf | null,
  ): void;
  /** Per row of [rows, cols]: y = (x - mean) * invStd * gamma + beta. Writes mean/invStd [rows]. */
  layerNorm(x: Buf, rows: number, cols: number, gamma: Buf, beta: Buf, eps: number, y: Buf, mean: Buf, invStd: Buf): void;
  layerNormBackward(
    x: Buf, rows: number, cols: number, gamma: Buf, mean: Buf, invStd: Buf, gy: Buf, gx: Buf,
    gGamma: Buf, gBeta: Buf,
  ): void;

  // ---- embedding -------------------------------------------------------------------------------
  /** out[i, :] = table[ids[i], :] for i < ids.length; table is [vocab, dim]. */
  embedding(table: Buf, ids: Int32Array, dim: number, out: Buf): void;
  /** gTable[ids[i], :] += gy[i, :] */
  embeddingBackward(gy: Buf, ids: Int32Array, dim: number, gTable: Buf): void;

  // ---- attention ----------------------------------------------------------------------------
  /**
   * Fused scaled dot-product attention: probs = softmax(scale · q kᵀ) per row (entries a causal
   * mask hides are exactly 0), out = (probs ∘ dropMask) v. `dropMask` (same shape as probs,
   * values 0 or 1/(1-p)) is attention dropout; null means none. Writes out and probs.
   */
  attention(g: AttentionGeometry, q: Buf, k: Buf, v: Buf, dropMask: Buf | null, out: Buf, probs: Buf): void;
  /**
   * Backward of `attention` from the saved probs. Accumulates into gq, gk, gv; a null gradient
   * buffer is skipped (that input is frozen).
   */
  attentionBackward(
    g: AttentionGeometry, q: Buf, k: Buf, v: Buf, probs: Buf, dropMask: Buf | null, gy: Buf,
    gq: Buf | null, gk: Buf | null, gv: Buf | null,
  ): void;

  // ---- optimizers over flat arenas (or ranges of them) ----------------------------------------
  /** torch.optim.SGD semantics. `momentumBuf` may be null when momentum = 0. */
  sgdStep(param: Buf, grad: Buf, momentumBuf: Buf | null, h: SgdHyper): void;
  /** torch.optim.Adam / AdamW semantics. */
  adamStep(param: Buf, grad: Buf, m: Buf, v: Buf, h: AdamHyper): void;
}
