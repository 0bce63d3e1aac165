// Q4_0x8, Q8_0x8, Q5_0x8, Q4_Kx8 and Q6_Kx8 (quant_blocks.h has their layouts): a Q4_0, Q8_0, Q5_0,
// Q4_K or Q6_K matrix's rows interleaved eight at a time, made in place at a generator's load where this CPU's products read them, and a
// row of one read back in its row format.
#pragma once

#include <cstdint>

#include "quant_blocks.h"

namespace sc {

/**
 * Whether this CPU's products read the interleaved formats at every row count: their 512-bit kernels
 * (AVX512-VNNI, quant_rows8_avx512.cc, quant_rows8_k_avx512.cc, quant_rows8_q6k_avx512.cc) for a few rows of x and the integer
 * tiles for a prefill.
 * Elsewhere a matrix stays in its row format (the interleaved ones' other readers dequantize them:
 * correct, not fast).
 */
bool rows8Products();

/** W's N rows (N a multiple of kRows8) of K weights in row format f (Q4_0, Q8_0, Q5_0, Q4_K, Q6_K) interleaved in place into qRows8Format(f). */
void repackRows8(QFmt f, uint8_t* w, int64_t N, int64_t K);

/** Row n of an interleaved matrix (f: Q4_0x8, Q8_0x8, Q5_0x8, Q4_Kx8, Q6_Kx8) of K weights a row as its blocks of the row format, into out. */
void rows8Row(QFmt f, const uint8_t* w, int64_t K, int64_t n, uint8_t* out);

/**
 * Super-block u of row n of a Q4_Kx8 matrix of K weights a row as Q4_K's unpackBlock gives it (the
 * same values, bit for bit): its 256 codes into c, a and off for each 16 of them, read straight from
 * the interleaved layout (the integer tiles' build).
 */
void rows8KUnpack(const uint8_t* w, int64_t K, int64_t n, int64_t u, int8_t* c, float* a, float* off);

/**
 * Super-block u of row n of a Q6_Kx8 matrix of K weights a row as Q6_K's unpackBlock gives it (the
 * same values, bit for bit): its 256 codes − 32 into c and d·sc for each 16 of them into a, read
 * straight from the interleaved layout (the integer tiles' build).
 */
void rows8Q6KUnpack(const uint8_t* w, int64_t K, int64_t n, int64_t u, int8_t* c, float* a);

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

/**
 * x's side of quantRows8KAvx512 from quantizeActivations' codes xq and scales xd (M·K/32): each pair
 * of blocks' codes interleaved as the Q4_Kx8 lane pairs meet them (pairs, M·K bytes: for k < 4, the
 * first block's codes 8k..8k+3, the second's, the first's 8k+4..8k+7, the second's), and each
 * block's d_x·Σq (t, M·K/32), what its mins meet.
 */
void rows8KX(const int8_t* xq, const float* xd, int64_t M, int64_t K, int8_t* pairs, float* t);

/**
 * y[m·ldy + n] = x̂_m·W[n] (+ bias[n]) for M rows of x (1 ≤ M ≤ 8; rows8KX's codes xq and terms t,
 * quantizeActivations' scales xd) and the rows n of W's groups of eight [g0, g1), W in Q4_Kx8.
 */
void quantRows8KAvx512(const int8_t* xq, const float* xd, const float* t, int M, const uint8_t* W, int64_t K, const float* bias, float* y,
                       int64_t ldy, int64_t g0, int64_t g1);

/**
 * x's side of quantRows8Q6KAvx512 from quantizeActivations' codes xq (M·K): each block of 32 in the
 * order the Q6_Kx8 lanes meet it (lanes, M·K bytes: for k < 4, codes 4k..4k+3 of its first 16, then
 * of its second 16); rows8Starts of these with centre 32 are its sums' starts.
 */
void rows8Q6KX(const int8_t* xq, int64_t M, int64_t K, int8_t* lanes);

/**
 * y[m·ldy + n] = x̂_m·W[n] (+ bias[n]) for M rows of x (1 ≤ M ≤ 8; rows8Q6KX's codes xq and their
 * rows8Starts, quantizeActivations' scales xd) and the rows n of W's groups of eight [g0, g1), W in Q6_Kx8.
 */
void quantRows8Q6KAvx512(const int8_t* xq, const float* xd, const int64_t* starts, int M, const uint8_t* W, int64_t K, const float* bias, float* y,
                         int64_t ldy, int64_t g0, int64_t g1);

}  // namespace sc
