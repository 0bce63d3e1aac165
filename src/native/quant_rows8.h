// Q4_0x8 (quant_blocks.h has its layout): a Q4_0 matrix's rows interleaved eight at a time, made in
// place at a generator's load where this CPU's products read it, and a row of it read back as Q4_0.
#pragma once

#include <cstdint>

#include "quant_blocks.h"

namespace sc {

/**
 * Whether this CPU's products read Q4_0x8 at every row count: its 512-bit kernel (AVX512-VNNI,
 * quant_rows8_avx512.cc) for a few rows of x and the integer tiles for a prefill. Elsewhere a Q4_0
 * matrix stays as it is (Q4_0x8's other readers dequantize it: correct, not fast).
 */
bool rows8Products();

/** W's N rows (N a multiple of kRows8) of K Q4_0 weights interleaved in place into Q4_0x8. */
void repackRows8(uint8_t* w, int64_t N, int64_t K);

/** Row n of a Q4_0x8 matrix of K weights a row as its K/32 Q4_0 blocks (18 bytes each) into out. */
void rows8Row(const uint8_t* w, int64_t K, int64_t n, uint8_t* out);

/**
 * What quantRows8Avx512's sums start from, per row of x and block of 32 (M·K/32 of them): a pair of
 * int32, −8·Σ of the codes of x the pair's even lane meets (bytes 0-3 of each 8) and its odd lane
 * meets (bytes 4-7), which takes Q4_0's centre 8 back out of the unsigned nibbles' sums.
 */
void rows8Starts(const int8_t* xq, int64_t M, int64_t K, int64_t* starts);

/**
 * y[m·ldy + n] = x̂_m·W[n] (+ bias[n]) for M rows of x (1 ≤ M ≤ 8; quantizeActivations' codes xq
 * [M·K] and scales xd [M·K/32], rows8Starts' starts) and the rows n of W's groups of eight [g0, g1),
 * W in Q4_0x8.
 */
void quantRows8Avx512(const int8_t* xq, const float* xd, const int64_t* starts, int M, const uint8_t* W, int64_t K, const float* bias, float* y,
                      int64_t ldy, int64_t g0, int64_t g1);

}  // namespace sc
