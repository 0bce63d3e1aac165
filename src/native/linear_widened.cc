// Thin float32 products over a weight held in 16 bits: y [M, N] = x [M, K] · widen(W [N, K])ᵀ
// (+ bias), x and y float32, for a few rows of x (a decode step's linears in fp32 generation of a
// BF16 or F16 folder: ops/linear_bf16_weight.ts, and quant_linear.cc for the f16 format). Each
// weight is widened exactly where it is read (bfloat16 is float32's top half; a float16 is
// rebuilt from its fields: quant_blocks.h halfToFloat), so the sums are float32 sums of the float32 products a widened weight gives, in
// another order than a GEMM's; W is read once a step at 2 bytes a weight, where a float32 copy is
// 4 (decode is bound by the bytes it reads). More rows of x go to tiles + the float32 GEMM.
#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "cpu_features.h"
#include "linear_widened.h"
#include "napi_args.h"
#include "quant_blocks.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

namespace sc {

namespace {

/** bfloat16 bits → float32 (exact: a shift). */
struct FromBf16 {
  static inline __attribute__((always_inline)) float widen(uint16_t h) { return bf16ToFloat(h); }
};

/** IEEE float16 bits → float32 (exact, branch-free: quant_blocks.h). */
struct FromF16 {
  static inline __attribute__((always_inline)) float widen(uint16_t h) { return halfToFloat(h); }
};

/** y[m, n] for rows [lo, hi) of W: Σ_k x[m, k] · widen(W[n, k]) in float32 lanes (each row of W read once, from L1 for every m after the first). */
template <typename From>
inline __attribute__((always_inline)) void widenedRowsOf(const float* SC_RESTRICT x, int64_t M, const uint16_t* SC_RESTRICT w, int64_t K, const float* bias,
                                                         float* SC_RESTRICT y, int64_t N, int64_t lo, int64_t hi) {
  for (int64_t n = lo; n < hi; n++) {
    const uint16_t* row = w + n * K;
    for (int64_t m = 0; m < M; m++) {
      const float* xm = x + m * K;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t k = 0; k < K; k++) acc += xm[k] * From::widen(row[k]);
      y[m * N + n] = bias ? acc + bias[n] : acc;
    }
  }
}

SC_VECTOR_KERNEL(void, widenedRows,
                 (const float* SC_RESTRICT x, int64_t M, const uint16_t* SC_RESTRICT w, int64_t K, const float* bias, float* SC_RESTRICT y,
                  int64_t N, int64_t lo, int64_t hi),
                 (x, M, w, K, bias, y, N, lo, hi)) {
  widenedRowsOf<FromBf16>(x, M, w, K, bias, y, N, lo, hi);
}

#if defined(__x86_64__) && defined(SC_AVX2_TARGET)
/**
 * widenedRowsOf<FromF16> on x86-64-v3, whose F16C widens 8 float16 in one instruction (exact,
 * subnormals included): the portable widening's selects, vectorised, ran a Qwen2.5-0.5B decode at
 * 1.8 tokens/s where the bf16 shift ran 9.3.
 */
__attribute__((target(SC_AVX2_TARGET))) void widenedHalfRowsF16c(const float* SC_RESTRICT x, int64_t M, const uint16_t* SC_RESTRICT w, int64_t K,
                                                                  const float* bias, float* SC_RESTRICT y, int64_t N, int64_t lo, int64_t hi) {
  for (int64_t n = lo; n < hi; n++) {
    const uint16_t* row = w + n * K;
    for (int64_t m = 0; m < M; m++) {
      const float* xm = x + m * K;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      int64_t k = 0;
      for (; k + 16 <= K; k += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(xm + k), _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k))), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(xm + k + 8), _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k + 8))), a1);
      }
      const __m256 a = _mm256_add_ps(a0, a1);
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      float acc = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
      for (; k < K; k++) acc += xm[k] * halfToFloat(row[k]);
      y[m * N + n] = bias ? acc + bias[n] : acc;
    }
  }
}
#endif

#if defined(__aarch64__)
/** The same on arm64, whose base NEON widens 4 float16 in one instruction (fcvtl: exact). */
void widenedHalfRowsNeon(const float* SC_RESTRICT x, int64_t M, const uint16_t* SC_RESTRICT w, int64_t K, const float* bias, float* SC_RESTRICT y,
                         int64_t N, int64_t lo, int64_t hi) {
  for (int64_t n = lo; n < hi; n++) {
    const uint16_t* row = w + n * K;
    for (int64_t m = 0; m < M; m++) {
      const float* xm = x + m * K;
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
      int64_t k = 0;
      for (; k + 8 <= K; k += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(xm + k), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(row + k))));
        a1 = vfmaq_f32(a1, vld1q_f32(xm + k + 4), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(row + k + 4))));
      }
      float acc = vaddvq_f32(vaddq_f32(a0, a1));
      for (; k < K; k++) acc += xm[k] * halfToFloat(row[k]);
      y[m * N + n] = bias ? acc + bias[n] : acc;
    }
  }
}
#endif

/** widenedRowsOf<FromF16> where the CPU table allows a widening instruction (F16C, NEON), the portable selects otherwise. */
void widenedHalfRows(const float* SC_RESTRICT x, int64_t M, const uint16_t* SC_RESTRICT w, int64_t K, const float* bias, float* SC_RESTRICT y, int64_t N,
                     int64_t lo, int64_t hi) {
#if defined(__x86_64__) && defined(SC_AVX2_TARGET)
  if (cpuFeatures().avx2) return widenedHalfRowsF16c(x, M, w, K, bias, y, N, lo, hi);
#elif defined(__aarch64__)
  if (cpuFeatures().neon) return widenedHalfRowsNeon(x, M, w, K, bias, y, N, lo, hi);
#endif
  widenedRowsOf<FromF16>(x, M, w, K, bias, y, N, lo, hi);
}

/** A thread's rows: ~64 KB of weight before the product forks. */
int64_t widenedGrain(int64_t K) { return std::max<int64_t>(4, 32768 / K); }

// linearWidenedThin(x, w, M, N, K, y, bias|null) → whether it served (M ≤ kWidenedThinRows).
napi_value LinearWidenedThin(Args& a) {
  const int64_t M = a.integer(2, "M", 1), N = a.integer(3, "N", 1), K = a.integer(4, "K", 1);
  if (M > kWidenedThinRows) return boolValue(a.env(), false);
  const F32 x = a.f32(0, "x"), y = a.f32(5, "y");
  const U16 w = a.u16(1, "w");
  const F32 bias = a.argCount() > 6 ? a.f32OrNull(6, "bias") : F32{};
  a.need(x, M * K, "x");
  a.need(w, N * K, "w");
  a.need(y, M * N, "y");
  if (bias.p) a.need(bias, N, "bias");
  parallelRange(N, widenedGrain(K), [&](int64_t lo, int64_t hi) { widenedRows(x.p, M, w.p, K, bias.p, y.p, N, lo, hi); });
  return boolValue(a.env(), true);
}

}  // namespace

void f16WidenedThin(const float* x, int64_t M, const uint16_t* w, int64_t K, const float* bias, float* y, int64_t N) {
  parallelRange(N, widenedGrain(K), [&](int64_t lo, int64_t hi) { widenedHalfRows(x, M, w, K, bias, y, N, lo, hi); });
}

void registerLinearWidened(napi_env env, napi_value exports) {
  defineFunction(env, exports, "linearWidenedThin", entry<LinearWidenedThin>);
}

}  // namespace sc
