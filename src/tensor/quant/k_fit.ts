/**
 * How ggml's K-quants fit codes to a group of weights (ggml-quants.c, quantize_row_q{4,5,6}_K_ref,
 * re-expressed here): a scale and minimum per group of 32 chosen by weighted least squares over a
 * sweep of candidate scales (`fitAffine`, make_qkx2_quants), or a signed scale per group of 16 by
 * the same search around the largest weight (`fitSymmetric`, make_qx_quants with weights x²).
 * Every operation rounds to float32 (Math.fround) as the C code's `float`s do.
 */
const f = Math.fround;

/** ggml's nearest_int: to nearest, ties to even (the float32 sum with 1.5·2²³ rounds it). */
export function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/** A group's fit: codes in `codes`, w ≈ scale·code − min. */
export interface AffineFit {
  scale: number;
  /** The minimum subtracted (≥ 0: a group's minimum is at most 0). */
  min: number;
}

/**
 * Codes 0..nmax for x[at, at + n) with weights `w`, minimising Σ w·(scale·code + min − x)² over
 * nstep + 1 candidate scales (nmax + rmin + rdelta·i over the range): make_qkx2_quants.
 */
export function fitAffine(
  x: Float32Array, at: number, n: number, nmax: number, w: Float32Array, codes: Uint8Array, codesAt: number,
  rmin: number, rdelta: number, nstep: number,
): AffineFit {
  let min = x[at];
  let max = x[at];
  let sumW = w[0];
  let sumX = f(sumW * x[at]);
  for (let i = 1; i < n; i++) {
    const v = x[at + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = f(sumW + w[i]);
    sumX = f(sumX + f(w[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    codes.fill(0, codesAt, codesAt + n);
    return { scale: 0, min: -min };
  }
  const range = f(max - min);
  let iscale = f(nmax / range);
  let scale = f(1 / iscale);
  let best = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestInt(f(iscale * f(x[at + i] - min))), 0, nmax);
    codes[codesAt + i] = l;
    const diff = f(f(f(scale * l) + min) - x[at + i]);
    best = f(best + f(w[i] * f(diff * diff)));
  }
  const trial = new Uint8Array(n);
  for (let step = 0; step <= nstep; step++) {
    iscale = f(f(f(f(rmin) + f(f(rdelta) * step)) + nmax) / range);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f(iscale * f(x[at + i] - min))), 0, nmax);
      trial[i] = l;
      const wl = f(w[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[at + i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
    let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f(sumXL / sumL2);
    }
    let err = 0;
    for (let i = 0; i < n; i++) {
      const diff = f(f(f(thisScale * trial[i]) + thisMin) - x[at + i]);
      err = f(err + f(w[i] * f(diff * diff)));
    }
    if (err < best) {
      codes.set(trial, codesAt);
      best = err;
      scale = thisScale;
      min = thisMin;
    }
  }
  return { scale, min: -min };
}

/**
 * Codes −nmax..nmax−1 (stored + nmax) for x[at, at + n) and their signed scale, weighting each
 * weight by x² and trying 19 scales around −nmax / (the largest weight): make_qx_quants, rmse 1.
 */
export function fitSymmetric(x: Float32Array, at: number, n: number, nmax: number, codes: Uint8Array, codesAt: number): number {
  let amax = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[at + i]);
    if (a > amax) {
      amax = a;
      max = x[at + i];
    }
  }
  if (amax < 1e-15) {
    codes.fill(0, codesAt, codesAt + n);
    return 0;
  }
  const sums = (iscale: number, store: boolean): [number, number] => {
    let sumLX = 0;
    let sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i];
      const l = clamp(nearestInt(f(iscale * v)), -nmax, nmax - 1);
      if (store) codes[codesAt + i] = l + nmax;
      const w = f(v * v);
      sumLX = f(sumLX + f(f(w * v) * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
    }
    return [sumLX, sumL2];
  };
  let [sumLX, sumL2] = sums(f(-nmax / max), true);
  let scale = sumL2 ? f(sumLX / sumL2) : 0;
  let best = f(scale * sumLX);
  for (let step = -9; step <= 9; step++) {
    if (step === 0) continue;
    const iscale = f(f(-f(nmax + f(f(0.1) * step))) / max);
    [sumLX, sumL2] = sums(iscale, false);
    if (sumL2 > 0 && f(sumLX * sumLX) > f(best * sumL2)) {
      sums(iscale, true);
      scale = f(sumLX / sumL2);
      best = f(scale * sumLX);
    }
  }
  return scale;
}
