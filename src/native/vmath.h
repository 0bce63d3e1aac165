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

}  // namespace sc
