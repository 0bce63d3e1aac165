// Q4_0x8, Q8_0x8 and Q5_0x8 (quant_blocks.h has their layout): a Q4_0, Q8_0 or Q5_0 matrix's rows interleaved
// eight at a time, made in place at a generator's load where this CPU's products read them, and a
// row of one read back in its row format.
#pragma once

#include <cstdint>

#include "quant_blocks.h"

namespace sc {

/**
 * Whether this CPU's products read Q4_0x8, Q8_0x8 and Q5_0x8 at every row count: their 512-bit kernel
 * (AVX512-VNNI, quant_rows8_avx512.cc) for a few rows of x and the integer tiles for a prefill.
 * Elsewhere a matrix stays in its row format (the interleaved ones' other readers dequantize them:
 * correct, not fast).
 */
bool rows8Products();

/** W's N rows (N a multiple of kRows8) of K weights in row format f (Q4_0, Q8_0, Q5_0) interleaved in place into qRows8Format(f). */
void repackRows8(QFmt f, uint8_t* w, int64_t N, int64_t K);

/** Row n of an interleaved matrix (f: Q4_0x8, Q8_0x8, Q5_0x8) of K weights a row as its K/32 blocks of the row format, into out. */
void rows8Row(QFmt f, const uint8_t* w, int64_t K, int64_t n, uint8_t* out);

/**
 * What quantRows8Avx512's sums start from, per row of x and block of 32 (M·K/32 of them): a pair of
 * int32, −centre·Σ of the codes of x the pair's even lane meets (bytes 0-3 of each 8) and its odd
 * lane meets (bytes 4-7), which takes the format's centre (Q4_0 8, Q5_0 16, Q8_0's c + 128: 128) back out of
 * the unsigned codes' sums.
 */
void rows8Starts(const int8_t* xq, int64_t M, int64_t K, int centre, int64_t* starts);

/**
 * y[m·ldy + n] = x̂_m·W[n] (+ bias[n]) for M rows of x (1 ≤ M ≤ 8; quantizeActivations' codes xq
 * [M·K] and scales xd [M·K/32], rows8Starts' starts) and the rows n of W's groups of eight [g0, g1),
 * W in f (Q4_0x8, Q8_0x8, Q5_0x8).
 */
void quantRows8Avx512(QFmt f, const int8_t* xq, const float* xd, const int64_t* starts, int M, const uint8_t* W, int64_t K, const float* bias,
                      float* y, int64_t ldy, int64_t g0, int64_t g1);

}  // namespace sc
