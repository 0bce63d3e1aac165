import type { Buf } from '../../backend.js';

/**
 * Batched GEMM in plain TypeScript. Each transpose case gets its own loop order so that the
 * innermost loop always walks memory contiguously (V8 then keeps the typed-array accesses cheap).
 */
export function gemm(
  transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Buf, strideA: number, B: Buf, strideB: number, beta: number, C: Buf, strideC: number,
  batch: number, bias: Buf | null = null,
): void {
  if (bias && beta !== 0) throw new RangeError('gemm: a bias needs beta = 0');
  if (bias && batch > 1 && strideC === 0) throw new RangeError('gemm: a bias needs a C per batch entry (strideC > 0)');
  for (let b = 0; b < batch; b++) {
    const a0 = b * strideA;
    const b0 = b * strideB;
    const c0 = b * strideC;
    if (bias) for (let i = 0; i < M; i++) C.set(bias.subarray(0, N), c0 + i * N);
    else scaleC(C, c0, M * N, beta);
    if (alpha === 0 || K === 0) continue;
    if (!transA && !transB) gemmNN(M, N, K, alpha, A, a0, B, b0, C, c0);
    else if (!transA && transB) gemmNT(M, N, K, alpha, A, a0, B, b0, C, c0);
    else if (transA && !transB) gemmTN(M, N, K, alpha, A, a0, B, b0, C, c0);
    else gemmTT(M, N, K, alpha, A, a0, B, b0, C, c0);
  }
}

/** beta = 0 overwrites (so NaN in C never leaks through), beta = 1 keeps C. */
function scaleC(C: Buf, c0: number, len: number, beta: number): void {
  if (beta === 1) return;
  if (beta === 0) {
    C.fill(0, c0, c0 + len);
    return;
  }
  for (let i = c0; i < c0 + len; i++) C[i] *= beta;
}

/** C[i,:] += alpha * sum_k A[i,k] B[k,:], four k at a time to cut C traffic. */
function gemmNN(M: number, N: number, K: number, alpha: number, A: Buf, a0: number, B: Buf, b0: number, C: Buf, c0: number): void {
  const K4 = K - (K % 4);
  for (let i = 0; i < M; i++) {
    const ai = a0 + i * K;
    const ci = c0 + i * N;
    let k = 0;
    for (; k < K4; k += 4) {
      const x0 = alpha * A[ai + k], x1 = alpha * A[ai + k + 1];
      const x2 = alpha * A[ai + k + 2], x3 = alpha * A[ai + k + 3];
      const r0 = b0 + k * N, r1 = r0 + N, r2 = r1 + N, r3 = r2 + N;
      for (let j = 0; j < N; j++) {
        C[ci + j] += x0 * B[r0 + j] + x1 * B[r1 + j] + x2 * B[r2 + j] + x3 * B[r3 + j];
      }
    }
    for (; k < K; k++) {
      const x = alpha * A[ai + k];
      const r = b0 + k * N;
      for (let j = 0; j < N; j++) C[ci + j] += x * B[r + j];
    }
  }
}

/** C[i,j] += alpha * dot(A[i,:], B[j,:]); four columns of C per pass over A's row. */
function gemmNT(M: number, N: number, K: number, alpha: number, A: Buf, a0: number, B: Buf, b0: number, C: Buf, c0: number): void {
  const N4 = N - (N % 4);
  for (let i = 0; i < M; i++) {
    const ai = a0 + i * K;
    const ci = c0 + i * N;
    let j = 0;
    for (; j < N4; j += 4) {
      const r0 = b0 + j * K, r1 = r0 + K, r2 = r1 + K, r3 = r2 + K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const x = A[ai + k];
        s0 += x * B[r0 + k];
        s1 += x * B[r1 + k];
        s2 += x * B[r2 + k];
        s3 += x * B[r3 + k];
      }
      C[ci + j] += alpha * s0;
      C[ci + j + 1] += alpha * s1;
      C[ci + j + 2] += alpha * s2;
      C[ci + j + 3] += alpha * s3;
    }
    for (; j < N; j++) {
      const r = b0 + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[ai + k] * B[r + k];
      C[ci + j] += alpha * s;
    }
  }
}

/** A is stored K×M: C[i,:] += alpha * sum_k A[k,i] B[k,:]; four k at a time. */
function gemmTN(M: number, N: number, K: number, alpha: number, A: Buf, a0: number, B: Buf, b0: number, C: Buf, c0: number): void {
  const K4 = K - (K % 4);
  for (let i = 0; i < M; i++) {
    const ci = c0 + i * N;
    let k = 0;
    for (; k < K4; k += 4) {
      const x0 = alpha * A[a0 + k * M + i], x1 = alpha * A[a0 + (k + 1) * M + i];
      const x2 = alpha * A[a0 + (k + 2) * M + i], x3 = alpha * A[a0 + (k + 3) * M + i];
      const r0 = b0 + k * N, r1 = r0 + N, r2 = r1 + N, r3 = r2 + N;
      for (let j = 0; j < N; j++) {
        C[ci + j] += x0 * B[r0 + j] + x1 * B[r1 + j] + x2 * B[r2 + j] + x3 * B[r3 + j];
      }
    }
    for (; k < K; k++) {
      const x = alpha * A[a0 + k * M + i];
      const r = b0 + k * N;
      for (let j = 0; j < N; j++) C[ci + j] += x * B[r + j];
    }
  }
}

/** Both transposed (rare): C[i,j] += alpha * sum_k A[k,i] B[j,k]. */
function gemmTT(M: number, N: number, K: number, alpha: number, A: Buf, a0: number, B: Buf, b0: number, C: Buf, c0: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a0 + k * M + i] * B[b0 + j * K + k];
      C[c0 + i * N + j] += alpha * s;
    }
  }
}
