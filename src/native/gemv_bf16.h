// Thin bf16 products x·Wᵀ for decode: AVX512-BF16 (gemv_bf16.cc) and AMX tiles (gemv_bf16_amx.cc).
#pragma once

#include <cstdint>

#include "bf16.h"

namespace sc {

/**
 * Rows of x at most this take a thin kernel (decode at batch 1 to 8); more go to oneDNN's product on a
 * packed weight (ops/packed_weights.ts THIN_ROWS, the same number, has the measurements). The
 * kernels take up to 16 rows (one AMX tile's columns): raise this to measure them there.
 */
constexpr int64_t kThinBf16Rows = 8;

/** Rows of x from which the AMX kernel serves where it can (below: AVX512-BF16, bound by memory there). */
constexpr int64_t kAmxThinRows = 2;

/**
 * C [M, N] = alpha · A [M, K] · B [N, K]ᵀ (+ bias [N], or + beta · C), all row-major: a GemmBf16 with
 * transB, one product (the caller checks the layout). Returns the kernel that ran ("thin amx_bf16",
 * "thin avx512_bf16"), or nullptr where none applies (M past kThinBf16Rows, no AVX512-BF16).
 */
const char* thinBf16Product(const GemmBf16& t);

/** The AMX kernel alone: false where it does not apply (no AMX, M past 16, K not a multiple of 32). */
bool thinBf16ProductAmx(const GemmBf16& t);

}  // namespace sc
