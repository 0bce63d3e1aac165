// The vector fits of quant_fit.h written once over a set of eight float lanes L (quant_fit_avx2.cc:
// AVX2's __m256; quant_fit_neon.cc: two NEON float32x4_t), group g in lane g, every lane doing the
// scalar fit's operations (quant_quantize.cc fitAffine, fitSymmetric) in its order: additions in
// the same sequence, no fused multiply-adds (the includer turns contraction off), IEEE division,
// ordered comparisons for min, max and the clamps. So each lane's codes, scale and min are the
// scalar fit's bit for bit. The steps where a lane's scalar path would leave the loop or skip a
// candidate (a group of equal or negligible weights, a candidate whose determinant is not positive
// or that is no better) are computed in every lane and discarded by masks.
//
// L has: V (eight floats) and M (their mask); set1, add, sub, mul, div, abs; lt, gt, eq (ordered),
// neq (unordered), both, any, select(mask, ifTrue, ifFalse); strided(p, stride) (p[0], p[stride],
// … p[7·stride]) and store. The includer defines SC_FIT_TARGET (its target attribute, or nothing).
#pragma once

#include <cstdint>

#include "quant_fit.h"

namespace sc {

template <class L>
struct VectorFits {
  using V = typename L::V;

  /** ggml's nearest_int per lane: (v + 1.5·2²³) − 1.5·2²³, exact for every value the clamps keep (quant_fit.h). */
  static SC_FIT_TARGET V nearest(V v) {
    const V magic = L::set1(12582912.0f);
    return L::sub(L::add(v, magic), magic);
  }

  /** v < lo ? lo : v > hi ? hi : v, per lane. */
  static SC_FIT_TARGET V clampTo(V v, V lo, V hi) {
    v = L::select(L::gt(v, hi), hi, v);
    return L::select(L::lt(v, lo), lo, v);
  }

  /** w·(scale·l + min − x)², the affine fit's squared error term. */
  static SC_FIT_TARGET V errorTerm(V w, V scale, V l, V min, V x) {
    const V diff = L::sub(L::add(L::mul(scale, l), min), x);
    return L::mul(w, L::mul(diff, diff));
  }

  static SC_FIT_TARGET void affine(const float* x, const float* w, int nmax, float rmin, float rdelta, int nstep, uint8_t* codes, AffineFit* fits) {
    V xt[32], wt[32], best[32], trial[32];
    for (int i = 0; i < 32; i++) {
      xt[i] = L::strided(x + i, 32);
      wt[i] = L::strided(w + i, 32);
    }
    const V zero = L::set1(0.0f), top = L::set1(static_cast<float>(nmax));
    const auto codeOf = [&](V xi, V iscale, V min) SC_FIT_TARGET { return clampTo(nearest(L::mul(iscale, L::sub(xi, min))), zero, top); };
    V min = xt[0], max = xt[0], sumW = wt[0], sumX = L::mul(sumW, xt[0]);
    for (int i = 1; i < 32; i++) {
      min = L::select(L::lt(xt[i], min), xt[i], min);
      max = L::select(L::gt(xt[i], max), xt[i], max);
      sumW = L::add(sumW, wt[i]);
      sumX = L::add(sumX, L::mul(wt[i], xt[i]));
    }
    min = L::select(L::gt(min, zero), zero, min);
    const auto flat = L::eq(max, min);
    const V range = L::sub(max, min), iscale0 = L::div(top, range);
    V scale = L::div(L::set1(1.0f), iscale0), bestErr = zero;
    for (int i = 0; i < 32; i++) {
      best[i] = codeOf(xt[i], iscale0, min);
      bestErr = L::add(bestErr, errorTerm(wt[i], scale, best[i], min, xt[i]));
    }
    for (int step = 0; step <= nstep; step++) {
      const V iscale = L::div(L::add(L::set1(rmin + rdelta * static_cast<float>(step)), top), range);
      V sumL = zero, sumL2 = zero, sumXL = zero;
      for (int i = 0; i < 32; i++) {
        trial[i] = codeOf(xt[i], iscale, min);
        const V wl = L::mul(wt[i], trial[i]);
        sumL = L::add(sumL, wl);
        sumL2 = L::add(sumL2, L::mul(wl, trial[i]));
        sumXL = L::add(sumXL, L::mul(wl, xt[i]));
      }
      const V D = L::sub(L::mul(sumW, sumL2), L::mul(sumL, sumL));
      V thisScale = L::div(L::sub(L::mul(sumW, sumXL), L::mul(sumX, sumL)), D);
      V thisMin = L::div(L::sub(L::mul(sumL2, sumX), L::mul(sumL, sumXL)), D);
      const auto positiveMin = L::gt(thisMin, zero);
      thisMin = L::select(positiveMin, zero, thisMin);
      thisScale = L::select(positiveMin, L::div(sumXL, sumL2), thisScale);
      V err = zero;
      for (int i = 0; i < 32; i++) err = L::add(err, errorTerm(wt[i], thisScale, trial[i], thisMin, xt[i]));
      const auto better = L::both(L::gt(D, zero), L::lt(err, bestErr));
      if (!L::any(better)) continue;
      for (int i = 0; i < 32; i++) best[i] = L::select(better, trial[i], best[i]);
      bestErr = L::select(better, err, bestErr);
      scale = L::select(better, thisScale, scale);
      min = L::select(better, thisMin, min);
    }
    // A group of equal weights: codes 0, scale 0, min its value (or 0), as the scalar fit returns.
    float scales[8], mins[8], l[8];
    L::store(scales, L::select(flat, zero, scale));
    L::store(mins, min);
    for (int i = 0; i < 32; i++) {
      L::store(l, L::select(flat, zero, best[i]));
      for (int g = 0; g < 8; g++) codes[32 * g + i] = static_cast<uint8_t>(l[g]);
    }
    for (int g = 0; g < 8; g++) fits[g] = {scales[g], -mins[g]};
  }

  static SC_FIT_TARGET void symmetric(const float* x, int nmax, uint8_t* codes, float* scales) {
    V xt[16], best[16], trial[16];
    for (int i = 0; i < 16; i++) xt[i] = L::strided(x + i, 16);
    const V zero = L::set1(0.0f), lo = L::set1(static_cast<float>(-nmax)), hi = L::set1(static_cast<float>(nmax - 1));
    V amax = zero, max = zero;
    for (int i = 0; i < 16; i++) {
      const V a = L::abs(xt[i]);
      const auto larger = L::gt(a, amax);
      amax = L::select(larger, a, amax);
      max = L::select(larger, xt[i], max);
    }
    // amax < 1e-15 in double, as the scalar fit compares: the same for every float, 1e-15f being the nearest to it.
    const auto negligible = L::lt(amax, L::set1(1e-15f));
    // The codes (−nmax..nmax−1) at iscale and their sums Σ(v²·v)·l, Σ(v²·l)·l.
    V sumLX, sumL2;
    const auto sums = [&](V iscale, V (&l)[16]) SC_FIT_TARGET {
      sumLX = zero;
      sumL2 = zero;
      for (int i = 0; i < 16; i++) {
        l[i] = clampTo(nearest(L::mul(iscale, xt[i])), lo, hi);
        const V w = L::mul(xt[i], xt[i]);
        sumLX = L::add(sumLX, L::mul(L::mul(w, xt[i]), l[i]));
        sumL2 = L::add(sumL2, L::mul(L::mul(w, l[i]), l[i]));
      }
    };
    sums(L::div(L::set1(static_cast<float>(-nmax)), max), best);
    V scale = L::select(L::neq(sumL2, zero), L::div(sumLX, sumL2), zero);
    V bestProduct = L::mul(scale, sumLX);
    for (int step = -9; step <= 9; step++) {
      if (step == 0) continue;
      sums(L::div(L::set1(-(static_cast<float>(nmax) + 0.1f * static_cast<float>(step))), max), trial);
      const auto better = L::both(L::gt(sumL2, zero), L::gt(L::mul(sumLX, sumLX), L::mul(bestProduct, sumL2)));
      if (!L::any(better)) continue;
      for (int i = 0; i < 16; i++) best[i] = L::select(better, trial[i], best[i]);
      scale = L::select(better, L::div(sumLX, sumL2), scale);
      bestProduct = L::select(better, L::mul(scale, sumLX), bestProduct);
    }
    // A group whose largest magnitude is below 1e-15: codes 0 (not nmax) and scale 0, as the scalar fit.
    const V offset = L::set1(static_cast<float>(nmax));
    float l[8];
    L::store(scales, L::select(negligible, zero, scale));
    for (int i = 0; i < 16; i++) {
      L::store(l, L::select(negligible, zero, L::add(best[i], offset)));
      for (int g = 0; g < 8; g++) codes[16 * g + i] = static_cast<uint8_t>(l[g]);
    }
  }
};

}  // namespace sc
