// quant_fit_body.h's fits on arm64's NEON (every arm64 CPU): eight groups in two float32x4_t.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant_fit.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define SC_FIT_TARGET
#include "quant_fit_body.h"

namespace sc {
namespace {

struct NeonLanes {
  struct V {
    float32x4_t a, b;
  };
  struct M {
    uint32x4_t a, b;
  };
  static V set1(float v) { return {vdupq_n_f32(v), vdupq_n_f32(v)}; }
  static V add(V x, V y) { return {vaddq_f32(x.a, y.a), vaddq_f32(x.b, y.b)}; }
  static V sub(V x, V y) { return {vsubq_f32(x.a, y.a), vsubq_f32(x.b, y.b)}; }
  static V mul(V x, V y) { return {vmulq_f32(x.a, y.a), vmulq_f32(x.b, y.b)}; }
  static V div(V x, V y) { return {vdivq_f32(x.a, y.a), vdivq_f32(x.b, y.b)}; }
  static V abs(V x) { return {vabsq_f32(x.a), vabsq_f32(x.b)}; }
  static M lt(V x, V y) { return {vcltq_f32(x.a, y.a), vcltq_f32(x.b, y.b)}; }
  static M gt(V x, V y) { return {vcgtq_f32(x.a, y.a), vcgtq_f32(x.b, y.b)}; }
  static M eq(V x, V y) { return {vceqq_f32(x.a, y.a), vceqq_f32(x.b, y.b)}; }
  static M neq(V x, V y) { return {vmvnq_u32(vceqq_f32(x.a, y.a)), vmvnq_u32(vceqq_f32(x.b, y.b))}; }
  static M both(M x, M y) { return {vandq_u32(x.a, y.a), vandq_u32(x.b, y.b)}; }
  static bool any(M m) { return vmaxvq_u32(vorrq_u32(m.a, m.b)) != 0; }
  static V select(M m, V t, V f) { return {vbslq_f32(m.a, t.a, f.a), vbslq_f32(m.b, t.b, f.b)}; }
  static V strided(const float* p, int s) {
    const float lo[4] = {p[0], p[s], p[2 * s], p[3 * s]}, hi[4] = {p[4 * s], p[5 * s], p[6 * s], p[7 * s]};
    return {vld1q_f32(lo), vld1q_f32(hi)};
  }
  static void store(float* out, V v) {
    vst1q_f32(out, v.a);
    vst1q_f32(out + 4, v.b);
  }
};

}  // namespace

bool vectorFitsAvailable() { return cpuFeatures().neon; }

void fitAffine8(const float* x, const float* w, int nmax, float rmin, float rdelta, int nstep, uint8_t* codes, AffineFit* fits) {
  VectorFits<NeonLanes>::affine(x, w, nmax, rmin, rdelta, nstep, codes, fits);
}

void fitSymmetric8(const float* x, int nmax, uint8_t* codes, float* scales) { VectorFits<NeonLanes>::symmetric(x, nmax, codes, scales); }

}  // namespace sc
#endif
