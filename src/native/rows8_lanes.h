// What the 512-bit kernels over rows interleaved by eight share (quant_rows8_avx512.cc,
// quant_rows8_k_avx512.cc): x's codes broadcast to every lane pair, a group's eight values out of its
// lane pairs, and the order a thread's groups are taken in. Included by those files alone (x86-64).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant_blocks.h"

#define SC_ROWS8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c,fma")))

namespace sc::rows8 {

/** Eight bytes of x broadcast to every 64-bit lane. */
SC_ROWS8_TARGET inline __m512i broadcast8(const int8_t* x) {
  int64_t v;
  std::memcpy(&v, x, 8);
  return _mm512_set1_epi64(v);
}

/** A group's eight values from its accumulator (row r's in lanes 2r and 2r + 1, added), plus its 8 biases (0 without), into y. */
SC_ROWS8_TARGET inline void storeRows(__m512 acc, const float* bias, float* y) {
  const __m512 pairSums = _mm512_add_ps(acc, _mm512_permute_ps(acc, 0xb1));
  const __m256 rows = _mm512_castps512_ps256(_mm512_maskz_compress_ps(0x5555, pairSums));
  _mm256_storeu_ps(y, _mm256_add_ps(rows, bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps()));
}

/**
 * Groups [g0, g1) of a thread's range: with one row of x (OneRow) four at a time through four(g), one
 * from each quarter of the range (four streams, as quant_rows_avx512.cc's one-row kernels: a group at
 * a time read the larger of SmolLM2's and Qwen2.5-0.5B's Q4_0 matrices from memory at 0.83-0.94x of
 * Q4_0's four streams, then 1.11-1.17x with four); the rest, and more rows of x, one at a time through one(g).
 */
template <bool OneRow, class Four, class One>
inline void inQuarters(int64_t g0, int64_t g1, Four&& four, One&& one) {
  int64_t g = g0;
  if constexpr (OneRow) {
    const int64_t quarter = (g1 - g0) / 4;
    for (int64_t i = 0; i < quarter; i++) {
      const int64_t groups[4] = {g0 + i, g0 + quarter + i, g0 + 2 * quarter + i, g0 + 3 * quarter + i};
      four(groups);
    }
    g = g0 + 4 * quarter;
  }
  for (; g < g1; g++) {
    const int64_t groups[1] = {g};
    one(groups);
  }
}

}  // namespace sc::rows8
