// The integer path on arm64 with DotProd (Armv8.2: Apple M1, Graviton 2): quant_dot_body.h with
// SDOT (vdotq_s32), four int8 products summed into each int32 lane, exact. Compiled for
// armv8.2-a+dotprod by a target attribute only; quant_linear.cc calls it where cpuFeatures().dotprod.
#include "quant_dot.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace sc {
namespace {

#define SC_QDOT_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))

struct Isa {
  using Acc = float32x4_t;
  static SC_QDOT_TARGET inline float32x4_t zero() { return vdupq_n_f32(0.0f); }
  static SC_QDOT_TARGET inline float32x4_t dot32(float32x4_t acc, const int8_t* w, const int8_t* x, float a0, float a1) {
    const int32x4_t z = vdupq_n_s32(0);
    const int32x4_t p0 = vdotq_s32(z, vld1q_s8(w), vld1q_s8(x));
    const int32x4_t p1 = vdotq_s32(z, vld1q_s8(w + 16), vld1q_s8(x + 16));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p0), a0);
    return vfmaq_n_f32(acc, vcvtq_f32_s32(p1), a1);
  }
  static SC_QDOT_TARGET inline float32x4_t dot32one(float32x4_t acc, const int8_t* w, const int8_t* x, float s) {
    const int32x4_t p = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(w), vld1q_s8(x)), vld1q_s8(w + 16), vld1q_s8(x + 16));
    return vfmaq_n_f32(acc, vcvtq_f32_s32(p), s);
  }
  static SC_QDOT_TARGET inline float sum(float32x4_t v) { return vaddvq_f32(v); }
};


#include "quant_unpack_neon.h"
#include "quant_dot_body.h"

#undef SC_QDOT_TARGET

}  // namespace

void quantDotNeonDot(const QuantDot& t, int64_t n0, int64_t n1) { dotRowsAny(t, n0, n1); }

}  // namespace sc
#endif
