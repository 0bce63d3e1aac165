// quant_quantize.cc's fits for eight groups at once on AVX2 — fitAffine for the eight groups of 32
// of a Q4_K or Q5_K super-block, fitSymmetric for eight of Q6_K's groups of 16: group g in lane g, every lane doing the scalar loop's operations in its order (additions in
// the same sequence, no fused multiply-adds, IEEE division and square root, comparisons for min,
// max and the clamps), so each lane's codes, scale and min are the scalar fit's bit for bit. The
// candidate-scale search is what the quantizer spends its time on: 21 passes over the 32 weights
// of a group for Q4_K, 19 over 16 for Q6_K. The steps where a lane's scalar path would leave the
// loop or skip a candidate (a group of equal or negligible weights, a candidate whose determinant
// is not positive or that is no better) are computed in every lane and discarded by masks.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant_fit.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define SC_FIT_TARGET __attribute__((target("avx2")))

namespace sc {
namespace {

/** ggml's nearest_int per lane: (v + 1.5·2²³) − 1.5·2²³, exact for every value the clamps keep (quant_fit.h). */
SC_FIT_TARGET inline __m256 nearest(__m256 v) {
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  return _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
}

/** v < lo ? lo : v > hi ? hi : v, per lane. */
SC_FIT_TARGET inline __m256 clampTo(__m256 v, __m256 lo, __m256 hi) {
  v = _mm256_blendv_ps(v, hi, _mm256_cmp_ps(v, hi, _CMP_GT_OQ));
  return _mm256_blendv_ps(v, lo, _mm256_cmp_ps(v, lo, _CMP_LT_OQ));
}

/** A lane's code for x at inverse scale iscale: clampTo(nearest(iscale·(x − min)), 0, nmax). */
SC_FIT_TARGET inline __m256 codeOf(__m256 x, __m256 iscale, __m256 min, __m256 nmax) {
  return clampTo(nearest(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min))), _mm256_setzero_ps(), nmax);
}

/** w·(scale·l + min − x)², the fit's squared error term. */
SC_FIT_TARGET inline __m256 errorTerm(__m256 w, __m256 scale, __m256 l, __m256 min, __m256 x) {
  const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, l), min), x);
  return _mm256_mul_ps(w, _mm256_mul_ps(diff, diff));
}

}  // namespace

bool vectorFitsAvailable() { return cpuFeatures().avx2; }

SC_FIT_TARGET void fitAffine8(const float* x, const float* w, int nmax, float rmin, float rdelta, int nstep, uint8_t* codes, AffineFit* fits) {
  __m256 xt[32], wt[32], best[32], trial[32];
  for (int i = 0; i < 32; i++) {
    xt[i] = _mm256_setr_ps(x[i], x[32 + i], x[64 + i], x[96 + i], x[128 + i], x[160 + i], x[192 + i], x[224 + i]);
    wt[i] = _mm256_setr_ps(w[i], w[32 + i], w[64 + i], w[96 + i], w[128 + i], w[160 + i], w[192 + i], w[224 + i]);
  }
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(static_cast<float>(nmax));
  __m256 min = xt[0], max = xt[0], sumW = wt[0], sumX = _mm256_mul_ps(sumW, xt[0]);
  for (int i = 1; i < 32; i++) {
    min = _mm256_blendv_ps(min, xt[i], _mm256_cmp_ps(xt[i], min, _CMP_LT_OQ));
    max = _mm256_blendv_ps(max, xt[i], _mm256_cmp_ps(xt[i], max, _CMP_GT_OQ));
    sumW = _mm256_add_ps(sumW, wt[i]);
    sumX = _mm256_add_ps(sumX, _mm256_mul_ps(wt[i], xt[i]));
  }
  min = _mm256_blendv_ps(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ));
  const __m256 flat = _mm256_cmp_ps(max, min, _CMP_EQ_OQ);
  const __m256 range = _mm256_sub_ps(max, min);
  const __m256 iscale0 = _mm256_div_ps(top, range);
  __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale0), err = zero;
  for (int i = 0; i < 32; i++) {
    best[i] = codeOf(xt[i], iscale0, min, top);
    err = _mm256_add_ps(err, errorTerm(wt[i], scale, best[i], min, xt[i]));
  }
  __m256 bestErr = err;
  for (int step = 0; step <= nstep; step++) {
    const float shift = rmin + rdelta * static_cast<float>(step);
    const __m256 iscale = _mm256_div_ps(_mm256_add_ps(_mm256_set1_ps(shift), top), range);
    __m256 sumL = zero, sumL2 = zero, sumXL = zero;
    for (int i = 0; i < 32; i++) {
      trial[i] = codeOf(xt[i], iscale, min, top);
      const __m256 wl = _mm256_mul_ps(wt[i], trial[i]);
      sumL = _mm256_add_ps(sumL, wl);
      sumL2 = _mm256_add_ps(sumL2, _mm256_mul_ps(wl, trial[i]));
      sumXL = _mm256_add_ps(sumXL, _mm256_mul_ps(wl, xt[i]));
    }
    const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sumW, sumL2), _mm256_mul_ps(sumL, sumL));
    __m256 thisScale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sumW, sumXL), _mm256_mul_ps(sumX, sumL)), D);
    __m256 thisMin = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sumL2, sumX), _mm256_mul_ps(sumL, sumXL)), D);
    const __m256 positiveMin = _mm256_cmp_ps(thisMin, zero, _CMP_GT_OQ);
    thisMin = _mm256_blendv_ps(thisMin, zero, positiveMin);
    thisScale = _mm256_blendv_ps(thisScale, _mm256_div_ps(sumXL, sumL2), positiveMin);
    err = zero;
    for (int i = 0; i < 32; i++) err = _mm256_add_ps(err, errorTerm(wt[i], thisScale, trial[i], thisMin, xt[i]));
    const __m256 better = _mm256_and_ps(_mm256_cmp_ps(D, zero, _CMP_GT_OQ), _mm256_cmp_ps(err, bestErr, _CMP_LT_OQ));
    if (_mm256_movemask_ps(better) == 0) continue;
    for (int i = 0; i < 32; i++) best[i] = _mm256_blendv_ps(best[i], trial[i], better);
    bestErr = _mm256_blendv_ps(bestErr, err, better);
    scale = _mm256_blendv_ps(scale, thisScale, better);
    min = _mm256_blendv_ps(min, thisMin, better);
  }
  // A group of equal weights: codes 0, scale 0, min its value (or 0) as the scalar fit returns.
  scale = _mm256_blendv_ps(scale, zero, flat);
  alignas(32) float scales[8], mins[8], l[8];
  _mm256_store_ps(scales, scale);
  _mm256_store_ps(mins, min);
  for (int i = 0; i < 32; i++) {
    _mm256_store_ps(l, _mm256_blendv_ps(best[i], zero, flat));
    for (int g = 0; g < 8; g++) codes[32 * g + i] = static_cast<uint8_t>(l[g]);
  }
  for (int g = 0; g < 8; g++) fits[g] = {scales[g], -mins[g]};
}

SC_FIT_TARGET void fitSymmetric8(const float* x, int nmax, uint8_t* codes, float* scales) {
  __m256 xt[16], best[16], trial[16];
  for (int i = 0; i < 16; i++) xt[i] = _mm256_setr_ps(x[i], x[16 + i], x[32 + i], x[48 + i], x[64 + i], x[80 + i], x[96 + i], x[112 + i]);
  const __m256 zero = _mm256_setzero_ps(), signBit = _mm256_set1_ps(-0.0f);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(-nmax)), hi = _mm256_set1_ps(static_cast<float>(nmax - 1));
  __m256 amax = zero, max = zero;
  for (int i = 0; i < 16; i++) {
    const __m256 a = _mm256_andnot_ps(signBit, xt[i]), larger = _mm256_cmp_ps(a, amax, _CMP_GT_OQ);
    amax = _mm256_blendv_ps(amax, a, larger);
    max = _mm256_blendv_ps(max, xt[i], larger);
  }
  // amax < 1e-15 in double, as the scalar fit compares: the same for every float, 1e-15f being the nearest to it.
  const __m256 negligible = _mm256_cmp_ps(amax, _mm256_set1_ps(1e-15f), _CMP_LT_OQ);
  // The codes (−nmax..nmax−1) at iscale and their sums Σ(v²·v)·l, Σ(v²·l)·l.
  const auto sums = [&](__m256 iscale, __m256 (&l)[16], __m256& sumLX, __m256& sumL2) SC_FIT_TARGET {
    sumLX = zero;
    sumL2 = zero;
    for (int i = 0; i < 16; i++) {
      l[i] = clampTo(nearest(_mm256_mul_ps(iscale, xt[i])), lo, hi);
      const __m256 w = _mm256_mul_ps(xt[i], xt[i]);
      sumLX = _mm256_add_ps(sumLX, _mm256_mul_ps(_mm256_mul_ps(w, xt[i]), l[i]));
      sumL2 = _mm256_add_ps(sumL2, _mm256_mul_ps(_mm256_mul_ps(w, l[i]), l[i]));
    }
  };
  __m256 sumLX, sumL2;
  sums(_mm256_div_ps(_mm256_set1_ps(static_cast<float>(-nmax)), max), best, sumLX, sumL2);
  __m256 scale = _mm256_blendv_ps(zero, _mm256_div_ps(sumLX, sumL2), _mm256_cmp_ps(sumL2, zero, _CMP_NEQ_UQ));
  __m256 bestProduct = _mm256_mul_ps(scale, sumLX);
  for (int step = -9; step <= 9; step++) {
    if (step == 0) continue;
    const float shift = static_cast<float>(nmax) + 0.1f * static_cast<float>(step);
    sums(_mm256_div_ps(_mm256_set1_ps(-shift), max), trial, sumLX, sumL2);
    const __m256 better = _mm256_and_ps(_mm256_cmp_ps(sumL2, zero, _CMP_GT_OQ),
                                        _mm256_cmp_ps(_mm256_mul_ps(sumLX, sumLX), _mm256_mul_ps(bestProduct, sumL2), _CMP_GT_OQ));
    if (_mm256_movemask_ps(better) == 0) continue;
    for (int i = 0; i < 16; i++) best[i] = _mm256_blendv_ps(best[i], trial[i], better);
    scale = _mm256_blendv_ps(scale, _mm256_div_ps(sumLX, sumL2), better);
    bestProduct = _mm256_blendv_ps(bestProduct, _mm256_mul_ps(scale, sumLX), better);
  }
  // A group whose largest magnitude is below 1e-15: codes 0 (not nmax) and scale 0, as the scalar fit.
  const __m256 offset = _mm256_set1_ps(static_cast<float>(nmax));
  alignas(32) float l[8];
  _mm256_storeu_ps(scales, _mm256_blendv_ps(scale, zero, negligible));
  for (int i = 0; i < 16; i++) {
    _mm256_store_ps(l, _mm256_blendv_ps(_mm256_add_ps(best[i], offset), zero, negligible));
    for (int g = 0; g < 8; g++) codes[16 * g + i] = static_cast<uint8_t>(l[g]);
  }
}

}  // namespace sc

#else
namespace sc {
bool vectorFitsAvailable() { return false; }
void fitAffine8(const float*, const float*, int, float, float, int, uint8_t*, AffineFit*) {}
void fitSymmetric8(const float*, int, uint8_t*, float*) {}
}  // namespace sc
#endif
