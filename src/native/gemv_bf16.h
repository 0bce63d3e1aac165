// Thin bf16 products x·Wᵀ for decode (gemv_bf16.cc).
#pragma once

#include <cstdint>

namespace sc {

/**
 * Rows of x at most this: batch-1 decode. bench:generate measured 8 rows (batch-8 decode) slower
 * here than in oneDNN's primitive, whose reorder 8 rows repay (GPT-2 124M: 93 against 106 tokens/s).
 */
constexpr int64_t kThinBf16Rows = 1;

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
