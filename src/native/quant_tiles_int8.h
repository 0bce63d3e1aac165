// Many rows of x against a quantized W with integer codes as integer GEMMs over repacked tiles
// (quant_tiles_int8.cc; quant_tiles_int8_neon.cc on arm64).
#pragma once

#include <cstdint>

#include "quant_blocks.h"

namespace sc {

/** Whether quantTilesInt8 takes format f (every one with integer codes, on x86-64 built with GCC or Clang and on arm64; the caller checks AVX512-VNNI or DotProd). */
bool quantTilesInt8Handles(QFmt f);

/**
 * y [M, N] = x̂·Wᵀ (+ bias), x̂ x's M rows quantized per block of 32 (quantizeActivations' codes xq
 * [M·K], scales xd [M·K/32] and sums xs [M·K/16]), W [N, K] in format f: W's rows repacked 16 at a
 * time, the tiles split over the threads. Needs AVX512-VNNI (x86-64) or DotProd (arm64).
 */
void quantTilesInt8(QFmt f, const int8_t* xq, const float* xd, const float* xs, int64_t M, const uint8_t* W, int64_t N, int64_t K, const float* bias,
                    float* y);

}  // namespace sc
