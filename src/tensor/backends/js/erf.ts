/**
 * The error function and its complement in float64 (JavaScript has neither), for the exact GELU
 * x·Φ(x) of BERT. Our own derivation from two textbook expansions:
 *  - erf(z), |z| < 2: 2/√π · e^(−z²) · Σₙ 2ⁿ z^(2n+1) / (1·3·…·(2n+1)) — every term positive, so
 *    no cancellation (< 40 terms).
 *  - erfc(z), z ≥ 2: the continued fraction e^(−z²)/√π · 1/(z + ½/(z + 1/(z + 3/2/(z + …)))),
 *    evaluated bottom-up; erfc(z) for z < 2 is 1 − erf(z) (erfc(2) ≈ 5e-3: ≤ 3 digits lost of 16).
 */
const SQRT_PI = Math.sqrt(Math.PI);
const SERIES_LIMIT = 2;

function erfSeries(a: number): number {
  const z2 = 2 * a * a;
  let term = a;
  let sum = a;
  for (let n = 0; n < 200 && term > 1e-17 * sum; n++) {
    term *= z2 / (2 * n + 3);
    sum += term;
  }
  return (2 / SQRT_PI) * Math.exp(-a * a) * sum;
}

function erfcFraction(a: number): number {
  let f = a;
  for (let k = 80; k >= 1; k--) f = a + k / 2 / f;
  return Math.exp(-a * a) / (SQRT_PI * f);
}

/** erfc(z) = 1 − erf(z), accurate in relative terms for large positive z too. */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 0) return 2 - erfc(-z);
  return z < SERIES_LIMIT ? 1 - erfSeries(z) : erfcFraction(z);
}

export function erf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const a = Math.abs(z);
  const r = a < SERIES_LIMIT ? erfSeries(a) : 1 - erfcFraction(a);
  return z < 0 ? -r : r;
}

/** Φ(x), the standard normal CDF, without cancellation in the lower tail. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}
