// Thin float32 products over weights held in 16 bits, widened exactly where they are read
// (linear_widened.cc): bfloat16 through the registry's linearWidenedThin, float16 (the f16 block
// format's rows, which are its float16 values in order) for quant_linear.cc.
#pragma once

#include <cstdint>

namespace sc {

/** Rows of x up to which the thin kernels serve (a decode batch); more: tiles + the float32 GEMM. */
constexpr int64_t kWidenedThinRows = 8;

/** y [M, N] = x [M, K] · widen(W [N, K])ᵀ (+ bias) for W float16 (M ≤ kWidenedThinRows), split over the threads. */
void f16WidenedThin(const float* x, int64_t M, const uint16_t* w, int64_t K, const float* bias, float* y, int64_t N);

}  // namespace sc
