import type { Buf } from '../../backend.js';

export function batchNorm(
  x: Buf, outer: number, C: number, inner: number, gamma: Buf, beta: Buf, runningMean: Buf,
  runningVar: Buf, training: boolean, momentum: number, eps: number, y: Buf, mean: Buf, invStd: Buf,
  relu = false,
): void {
  const m = outer * inner;
  for (let c = 0; c < C; c++) {
    if (training) {
      let s = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        for (let i = 0; i < inner; i++) s += x[base + i];
      }
      const mu = s / m;
      let sq = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        for (let i = 0; i < inner; i++) {
          const d = x[base + i] - mu;
          sq += d * d;
        }
      }
      const variance = sq / m;
      mean[c] = mu;
      invStd[c] = 1 / Math.sqrt(variance + eps);
      const unbiased = m > 1 ? (sq / (m - 1)) : variance;
      runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mu;
      runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased;
    } else {
      mean[c] = runningMean[c];
      invStd[c] = 1 / Math.sqrt(runningVar[c] + eps);
    }
    const scale = invStd[c] * gamma[c];
    const mu = mean[c];
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) y[base + i] = (x[base + i] - mu) * scale + beta[c];
    }
  }
  if (relu) for (let i = 0; i < y.length; i++) y[i] = y[i] > 0 ? y[i] : 0;
}

/** Whether bf16 bits b widen to a float32 > 0: sign clear, not zero, not NaN (above +inf's 0x7f80). */
function positiveBf16(b: number): boolean {
  return b > 0 && b <= 0x7f80;
}

export function batchNormBackward(
  x: Buf, outer: number, C: number, inner: number, gamma: Buf, mean: Buf, invStd: Buf, gy: Buf,
  gx: Buf, gGamma: Buf, gBeta: Buf, setGx = false, reluY: Buf | null = null,
): void {
  if (setGx) gx.fill(0);
  if (reluY instanceof Uint16Array) gy = gy.map((g, i) => (positiveBf16(reluY[i]) ? g : 0));
  else if (reluY) gy = gy.map((g, i) => (reluY[i] > 0 ? g : 0));
  const m = outer * inner;
  for (let c = 0; c < C; c++) {
    const mu = mean[c];
    const is = invStd[c];
    let sumG = 0;
    let sumGX = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) {
        const g = gy[base + i];
        sumG += g;
        sumGX += g * (x[base + i] - mu) * is;
      }
    }
    gGamma[c] += sumGX;
    gBeta[c] += sumG;
    const k = (gamma[c] * is) / m;
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) {
        const xhat = (x[base + i] - mu) * is;
        gx[base + i] += k * (m * gy[base + i] - sumG - xhat * sumGX);
      }
    }
  }
}

export function layerNorm(x: Buf, rows: number, cols: number, gamma: Buf, beta: Buf, eps: number, y: Buf, mean: Buf, invStd: Buf): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[off + j];
    const mu = s / cols;
    let sq = 0;
    for (let j = 0; j < cols; j++) {
      const d = x[off + j] - mu;
      sq += d * d;
    }
    const is = 1 / Math.sqrt(sq / cols + eps);
    mean[r] = mu;
    invStd[r] = is;
    for (let j = 0; j < cols; j++) y[off + j] = (x[off + j] - mu) * is * gamma[j] + beta[j];
  }
}

export function layerNormBackward(
  x: Buf, rows: number, cols: number, gamma: Buf, mean: Buf, invStd: Buf, gy: Buf, gx: Buf,
  gGamma: Buf, gBeta: Buf,
): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const mu = mean[r];
    const is = invStd[r];
    let sumG = 0;
    let sumGX = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[off + j] - mu) * is;
      const g = gy[off + j] * gamma[j];
      sumG += g;
      sumGX += g * xhat;
      gGamma[j] += gy[off + j] * xhat;
      gBeta[j] += gy[off + j];
    }
    for (let j = 0; j < cols; j++) {
      const xhat = (x[off + j] - mu) * is;
      gx[off + j] += (is / cols) * (cols * gy[off + j] * gamma[j] - sumG - xhat * sumGX);
    }
  }
}

/** Backward of eval-mode batch-norm: an affine map per channel with fixed statistics. */
export function batchNormEvalBackward(
  x: Buf, outer: number, C: number, inner: number, gamma: Buf, mean: Buf, invStd: Buf,
  gy: Buf, gx: Buf | null, gGamma: Buf, gBeta: Buf,
): void {
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) {
        const g = gy[base + i];
        if (gx) gx[base + i] += g * gamma[c] * invStd[c];
        gGamma[c] += g * (x[base + i] - mean[c]) * invStd[c];
        gBeta[c] += g;
      }
    }
  }
}

export function rmsNorm(x: Buf, rows: number, cols: number, weight: Buf, eps: number, y: Buf, invRms: Buf): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    let sq = 0;
    for (let j = 0; j < cols; j++) sq += x[off + j] * x[off + j];
    const inv = 1 / Math.sqrt(sq / cols + eps);
    invRms[r] = inv;
    for (let j = 0; j < cols; j++) y[off + j] = x[off + j] * inv * weight[j];
  }
}

export function rmsNormBackward(
  x: Buf, rows: number, cols: number, weight: Buf, invRms: Buf, gy: Buf, gx: Buf | null, gWeight: Buf | null,
): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const inv = invRms[r];
    // mean_j(g·x̂) with g = gy·weight, x̂ = x·inv: the part of g along x̂ that the normalisation removes.
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += gy[off + j] * weight[j] * x[off + j] * inv;
    const along = dot / cols;
    for (let j = 0; j < cols; j++) {
      const xhat = x[off + j] * inv;
      if (gx) gx[off + j] += inv * (gy[off + j] * weight[j] - xhat * along);
      if (gWeight) gWeight[j] += gy[off + j] * xhat;
    }
  }
}
