// Thin bf16 products x·Wᵀ for decode (gemv_bf16.cc).
#pragma once

#include <cstdint>

namespace sc {

/** Rows of x at most this: a decode step's batch; above it oneDNN's primitive repays its reorder. */
constexpr int64_t kThinBf16Rows = 8;

/** C [M, N] = alpha · A [M, K] · B [N, K]ᵀ (+ bias [N], or + beta · C), all row-major, one product. */
struct ThinBf16 {
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1, beta = 0;
  const uint16_t* A = nullptr;
  const uint16_t* B = nullptr;
  float* C = nullptr;
  const float* bias = nullptr;
};

/** Runs the product with AVX512-BF16 and returns true, or false (nothing written) where it does not apply. */
bool thinBf16Product(const ThinBf16& t);

}  // namespace sc
