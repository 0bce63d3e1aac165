// Thin bf16 products x·Wᵀ for decode (gemv_bf16.cc).
#pragma once

#include <cstdint>

#include "bf16.h"

namespace sc {

/**
 * Rows of x at most this: batch-1 decode. bench:generate measured 8 rows (batch-8 decode) slower
 * here than in oneDNN's primitive, whose reorder 8 rows repay (GPT-2 124M: 93 against 106 tokens/s).
 */
constexpr int64_t kThinBf16Rows = 1;

/**
 * C [M, N] = alpha · A [M, K] · B [N, K]ᵀ (+ bias [N], or + beta · C), all row-major: a GemmBf16 with
 * transB, one product (the caller checks the layout).
 */
bool thinBf16Product(const GemmBf16& t);

}  // namespace sc
