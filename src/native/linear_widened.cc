// Thin float32 products over a weight held in bfloat16: y [M, N] = x [M, K] · widen(W [N, K])ᵀ
// (+ bias), x and y float32, for a few rows of x (a decode step's linears in fp32 generation of a
// BF16 folder, ops/linear_bf16_weight.ts). Each weight is widened exactly where it is read (a
// shift: bfloat16 is float32's top half), so the sums are float32 sums of the float32 products
// a widened weight gives, in another order than a GEMM's; W is read once a step at 2 bytes a
// weight, where a float32 copy is 4 (decode is bound by the bytes it reads). More rows of x go to
// the op's tiles + the float32 GEMM (the kernel answers false).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

namespace sc {

namespace {

/** Rows of x up to which the kernel serves (a decode batch); more: the tiles + GEMM. */
constexpr int64_t kWidenedThinRows = 8;

/** y[m, n] for rows [lo, hi) of W: Σ_k x[m, k] · widen(W[n, k]) in float32 lanes (each row of W read once, from L1 for every m after the first). */
SC_VECTOR_KERNEL(void, widenedRows,
                 (const float* SC_RESTRICT x, int64_t M, const uint16_t* SC_RESTRICT w, int64_t K, const float* bias, float* SC_RESTRICT y,
                  int64_t N, int64_t lo, int64_t hi),
                 (x, M, w, K, bias, y, N, lo, hi)) {
  for (int64_t n = lo; n < hi; n++) {
    const uint16_t* row = w + n * K;
    for (int64_t m = 0; m < M; m++) {
      const float* xm = x + m * K;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t k = 0; k < K; k++) {
        const uint32_t bits = static_cast<uint32_t>(row[k]) << 16;
        float v;
        std::memcpy(&v, &bits, sizeof v);
        acc += xm[k] * v;
      }
      y[m * N + n] = bias ? acc + bias[n] : acc;
    }
  }
}

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
  // A thread's rows: ~64 KB of weight before the product forks.
  parallelRange(N, std::max<int64_t>(4, 32768 / K), [&](int64_t lo, int64_t hi) { widenedRows(x.p, M, w.p, K, bias.p, y.p, N, lo, hi); });
  return boolValue(a.env(), true);
}

}  // namespace

void registerLinearWidened(napi_env env, napi_value exports) {
  defineFunction(env, exports, "linearWidenedThin", entry<LinearWidenedThin>);
}

}  // namespace sc
