// quant_linear.cc's product for other native callers (a fused decode layer: llama_decode.cc).
#pragma once

#include <cstdint>

#include "quant_blocks.h"

namespace sc {

/**
 * y [M, N] = x [M, K] · Wᵀ (+ bias) for W's N rows of K weights in format f, by the path quantLinear
 * takes (integer products on quantized x for a few rows at inference, tiles + GEMM past them or
 * when `exact`; bf16 operands when `bf16`). The caller has checked the sizes.
 */
void quantLinearProduct(QFmt f, const uint8_t* w, const float* x, int64_t M, int64_t N, int64_t K, const float* bias, float* y, bool exact,
                        bool bf16);

}  // namespace sc
