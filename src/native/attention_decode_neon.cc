// A decode step's two attention products on arm64 NEON (attention_decode.cc's contract and
// arithmetic): the scores q·k_j, four keys at a time with 4-float lanes (FMA over a float32 cache
// or a widened bf16 one; BFDOT over a bf16 cache where the CPU has Armv8.6 BF16, q already rounded
// to bf16 as the bf16 attention op rounds it), and out = Σ_j p_j v_j, 16 columns a pass over the
// keys, each column summed over j ascending as the portable loop sums it. Only the order of the
// scores' sums differs from the portable loops (a float32 rounding apart), and BFDOT's pair sums
// round to odd (gemv_bf16_neon.cc).
#include "attention_decode_neon.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cmath>

#include "bf16.h"

namespace sc {
namespace {

inline float32x4_t load4(const float* p) { return vld1q_f32(p); }
inline float32x4_t load4(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
inline float valueOf(float x) { return x; }
inline float valueOf(uint16_t h) { return widenBf16(h); }

/** Keys [j, j + R) against q by FMA (q float32; k float32 or widened bf16). */
template <int R, class T>
void scoreKeys(const float* q, const T* k, float* scores, int64_t j, int64_t d, float scale) {
  const int64_t full = d - d % 4;
  float32x4_t acc[R];
  for (int r = 0; r < R; r++) acc[r] = vdupq_n_f32(0.0f);
  for (int64_t c = 0; c < full; c += 4) {
    const float32x4_t qv = vld1q_f32(q + c);
    for (int r = 0; r < R; r++) acc[r] = vfmaq_f32(acc[r], qv, load4(k + (j + r) * d + c));
  }
  for (int r = 0; r < R; r++) {
    float s = vaddvq_f32(acc[r]);
    for (int64_t c = full; c < d; c++) s += q[c] * valueOf(k[(j + r) * d + c]);
    scores[j + r] = scale * s;
  }
}

/** Keys [j, j + R) against q by BFDOT (q and k bf16). */
template <int R>
__attribute__((target("arch=armv8.2-a+bf16")))
void scoreKeysBfdot(const uint16_t* q, const uint16_t* k, float* scores, int64_t j, int64_t d, float scale) {
  const int64_t full = d - d % 8;
  float32x4_t acc[R];
  for (int r = 0; r < R; r++) acc[r] = vdupq_n_f32(0.0f);
  for (int64_t c = 0; c < full; c += 8) {
    const bfloat16x8_t qv = vreinterpretq_bf16_u16(vld1q_u16(q + c));
    for (int r = 0; r < R; r++) acc[r] = vbfdotq_f32(acc[r], qv, vreinterpretq_bf16_u16(vld1q_u16(k + (j + r) * d + c)));
  }
  for (int r = 0; r < R; r++) {
    float s = vaddvq_f32(acc[r]);
    for (int64_t c = full; c < d; c++) s += widenBf16(q[c]) * widenBf16(k[(j + r) * d + c]);
    scores[j + r] = scale * s;
  }
}

}  // namespace

template <class T>
void scoreRowNeon(const float* q, const T* k, float* scores, int64_t keys, int64_t d, float scale) {
  int64_t j = 0;
  for (; j + 4 <= keys; j += 4) scoreKeys<4>(q, k, scores, j, d, scale);
  for (; j < keys; j++) scoreKeys<1>(q, k, scores, j, d, scale);
}

void scoreRowBfdot(const uint16_t* q, const uint16_t* k, float* scores, int64_t keys, int64_t d, float scale) {
  int64_t j = 0;
  for (; j + 4 <= keys; j += 4) scoreKeysBfdot<4>(q, k, scores, j, d, scale);
  for (; j < keys; j++) scoreKeysBfdot<1>(q, k, scores, j, d, scale);
}

template <class T>
void weightedRowNeon(const float* p, const T* v, float* out, int64_t keys, int64_t dv) {
  const int64_t full = dv - dv % 16;
  for (int64_t c0 = 0; c0 < full; c0 += 16) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t j = 0; j < keys; j++) {
      const float32x4_t pj = vdupq_n_f32(p[j]);
      const T* vj = v + j * dv + c0;
      for (int u = 0; u < 4; u++) acc[u] = vfmaq_f32(acc[u], pj, load4(vj + 4 * u));
    }
    for (int u = 0; u < 4; u++) vst1q_f32(out + c0 + 4 * u, acc[u]);
  }
  for (int64_t c = full; c < dv; c++) {
    float acc = 0.0f;
    for (int64_t j = 0; j < keys; j++) acc = std::fma(p[j], valueOf(v[j * dv + c]), acc);
    out[c] = acc;
  }
}

template void scoreRowNeon<float>(const float*, const float*, float*, int64_t, int64_t, float);
template void scoreRowNeon<uint16_t>(const float*, const uint16_t*, float*, int64_t, int64_t, float);
template void weightedRowNeon<float>(const float*, const float*, float*, int64_t, int64_t);
template void weightedRowNeon<uint16_t>(const float*, const uint16_t*, float*, int64_t, int64_t);

}  // namespace sc
#endif
