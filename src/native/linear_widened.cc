// Thin float32 products over a weight held in 16 bits: y [M, N] = x [M, K] · widen(W [N, K])ᵀ
// (+ bias), x and y float32, for a few rows of x (a decode step's linears in fp32 generation of a
// BF16 or F16 folder: ops/linear_bf16_weight.ts, and quant_linear.cc for the f16 format). Each
// weight is widened exactly where it is read (bfloat16 is float32's top half; a float16 is
// rebuilt from its fields, its subnormals from their integer mantissa, so flushed denormals never
// touch it), so the sums are float32 sums of the float32 products a widened weight gives, in
// another order than a GEMM's; W is read once a step at 2 bytes a weight, where a float32 copy is
// 4 (decode is bound by the bytes it reads). More rows of x go to tiles + the float32 GEMM.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "linear_widened.h"
#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

namespace sc {

namespace {

inline float floatOfBits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

inline uint32_t bitsOfFloat(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

/** bfloat16 bits → float32 (exact: a shift). */
struct FromBf16 {
  static inline __attribute__((always_inline)) float widen(uint16_t h) { return floatOfBits(static_cast<uint32_t>(h) << 16); }
};

/**
 * IEEE float16 bits → float32, exact and branch-free (the loop vectorises): a normal's fields
 * re-biased; a subnormal's mantissa times 2^-24 through an integer conversion (a normal float32,
 * whatever the denormal flags); infinities and NaN kept.
 */
struct FromF16 {
  static inline __attribute__((always_inline)) float widen(uint16_t h) {
    const uint32_t exp = (h >> 10) & 31, man = h & 0x3ff;
    const float normal = floatOfBits(((static_cast<uint32_t>(h) & 0x7fff) << 13) + (112u << 23));
    const float subnormal = static_cast<float>(static_cast<int32_t>(man)) * 5.9604644775390625e-8f;
    const float special = floatOfBits(0x7f800000u | (man << 13));
    const float magnitude = exp == 0 ? subnormal : exp == 31 ? special : normal;
    return floatOfBits(bitsOfFloat(magnitude) | (static_cast<uint32_t>(h & 0x8000) << 16));
  }
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

SC_VECTOR_KERNEL(void, widenedHalfRows,
                 (const float* SC_RESTRICT x, int64_t M, const uint16_t* SC_RESTRICT w, int64_t K, const float* bias, float* SC_RESTRICT y,
                  int64_t N, int64_t lo, int64_t hi),
                 (x, M, w, K, bias, y, N, lo, hi)) {
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
