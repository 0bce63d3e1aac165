// Horizontal sums of AVX-512 accumulators, for the kernels that keep one accumulator per output
// (the thin fp32 product, gemm_thin.cc; the decode attention's dot products, attention_decode.cc;
// the one-row quantized and bf16 products, quant_rows_avx512.cc and gemv_bf16.cc): four
// accumulators folded together cost about what one costs alone. Include only where
// <immintrin.h> is available (x86-64 GCC/Clang); the callers guard it.
#pragma once

#include <immintrin.h>

namespace sc {

/** v's upper eight lanes added to its lower eight. */
__attribute__((target("avx512f,avx2,fma")))
inline __m256 foldLanes(__m512 v) {
  // The zero-masked extracts: GCC 12's plain ones (and the 512-to-256 cast) warn of an uninitialised operand.
  const __m512d d = _mm512_castps_pd(v);
  return _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 0)),
                       _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 1)));
}

/** The four sums of a, b, c, d's 16 lanes, in that order. */
__attribute__((target("avx512f,avx2,fma")))
inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m256 ab = _mm256_hadd_ps(foldLanes(a), foldLanes(b));  // a01 a23 b01 b23 | a45 a67 b45 b67
  const __m256 cd = _mm256_hadd_ps(foldLanes(c), foldLanes(d));
  const __m256 all = _mm256_hadd_ps(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
  return _mm_add_ps(_mm256_castps256_ps128(all), _mm256_extractf128_ps(all, 1));
}

/** The sum of v's 16 lanes, added up as sum4 adds each of its four: one output's bits whichever way it was grouped. */
__attribute__((target("avx512f,avx2,fma")))
inline float sum1(__m512 v) { return _mm_cvtss_f32(sum4(v, v, v, v)); }

}  // namespace sc
