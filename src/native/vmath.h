// exp in a form GCC vectorises (libm's expf is a scalar call, ~20x slower per element than a
// streaming loop): exp(x) = 2^n · e^r with n = round(x / ln 2), r = x − n·ln 2 in two parts
// (Cody–Waite), |r| <= ln2/2, and e^r by its Taylor polynomial to degree 7 (truncation < 1e-8
// relative); 2^n is built in the exponent bits. Within ~2 ulp of libm over the float range;
// overflow gives +inf, x below −86.6 (results under 2.4e-38, near the subnormal range that
// flush-to-zero drops anyway) gives 0, NaN stays NaN.
#pragma once

#include <cstdint>
#include <cstring>

namespace sc {

inline float vexp(float x) {
  const float hi = 88.7228f, lo = -86.6f;  // n stays in [-125, 128]
  const float xc = x > hi ? hi : (x < lo ? lo : x);
  const float n = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 126) << 23;  // 2^(n-1): finite for n = 128 too
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = p * scale * 2.0f;
  y = x > hi ? __builtin_inff() : y;
  y = x < lo ? 0.0f : y;
  return x != x ? x : y;
}

/**
 * erfc in a form GCC vectorises (libm's erfcf is a scalar call): erfc(z) = t·exp(−z² + P(t)) with
 * t = 1/(1 + z/2) for z = |x| and P the degree-9 Chebyshev fit of Numerical Recipes' erfcc
 * (fractional error < 1.2e-7 for every z), erfc(x) = 2 − erfc(−x) below zero. z² is split as
 * hi² + (z − hi)(z + hi), hi keeping 12 significant bits so hi² is exact: e^(−z²) keeps its relative
 * precision in the tail (erfc(4) ≈ 1.5e-8 still to ~1e-6) where exp(−z·z) would lose it to rounding.
 */
inline float verfc(float x) {
  const float z = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  uint32_t bits;
  std::memcpy(&bits, &z, sizeof bits);
  bits &= 0xfffff000u;
  float hi;
  std::memcpy(&hi, &bits, sizeof hi);
  const float r = t * vexp(-hi * hi) * vexp(p - (z - hi) * (z + hi));
  return x < 0.0f ? 2.0f - r : r;
}

}  // namespace sc
