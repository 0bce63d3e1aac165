// quant_fit_body.h's fits on AVX2: eight groups in the eight lanes of a __m256.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant_fit.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define SC_FIT_TARGET __attribute__((target("avx2")))
#include "quant_fit_body.h"

namespace sc {
namespace {

struct Avx2Lanes {
  using V = __m256;
  using M = __m256;  // all ones where true
  static SC_FIT_TARGET V set1(float v) { return _mm256_set1_ps(v); }
  static SC_FIT_TARGET V add(V a, V b) { return _mm256_add_ps(a, b); }
  static SC_FIT_TARGET V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static SC_FIT_TARGET V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static SC_FIT_TARGET V div(V a, V b) { return _mm256_div_ps(a, b); }
  static SC_FIT_TARGET V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static SC_FIT_TARGET M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static SC_FIT_TARGET M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static SC_FIT_TARGET M eq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static SC_FIT_TARGET M neq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
  static SC_FIT_TARGET M both(M a, M b) { return _mm256_and_ps(a, b); }
  static SC_FIT_TARGET bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static SC_FIT_TARGET V select(M m, V ifTrue, V ifFalse) { return _mm256_blendv_ps(ifFalse, ifTrue, m); }
  static SC_FIT_TARGET V strided(const float* p, int s) { return _mm256_setr_ps(p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s], p[6 * s], p[7 * s]); }
  static SC_FIT_TARGET void store(float* out, V v) { _mm256_storeu_ps(out, v); }
};

}  // namespace

bool vectorFitsAvailable() { return cpuFeatures().avx2; }

void fitAffine8(const float* x, const float* w, int nmax, float rmin, float rdelta, int nstep, uint8_t* codes, AffineFit* fits) {
  VectorFits<Avx2Lanes>::affine(x, w, nmax, rmin, rdelta, nstep, codes, fits);
}

void fitSymmetric8(const float* x, int nmax, uint8_t* codes, float* scales) { VectorFits<Avx2Lanes>::symmetric(x, nmax, codes, scales); }

}  // namespace sc
#endif
