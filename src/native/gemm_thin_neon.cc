// The thin float32 product C = alpha·x·Wᵀ (+ bias | + beta·C) on arm64 NEON: the contract of
// gemm_thin.cc (a few rows of x against a linear layer's W [N, K] row-major, a decode step), for
// Apple Silicon and Graviton. W is read once, straight: four rows of W at a time against up to
// kRowsPerPass rows of x, 4-float lanes, one FMA a lane (4 × 4 accumulators and 4 + 4 operands of
// NEON's 32 registers); more rows of x take another pass over the block, from L1. K's last K % 4
// values are summed in scalar FMAs after the lanes. The sums' order differs from BLAS's (a float32
// rounding apart), and from the AVX-512 kernel's (16 lanes there).
//
// What it should reach (docs/NATIVE.md, "NEON paths"): at one row it is bound by reading W, at 8
// rows by the FMA pipes (4 × 128-bit on an Apple P-core), as the x86 kernel is by AVX-512's.
#include "thin_neon.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "threads.h"

namespace sc {
namespace {

/** Rows of x per pass over a block of four rows of W: 16 accumulators, 4 of W, 4 of x. */
constexpr int kRowsPerPass = 4;
constexpr int64_t kRowGrain = 256;  // rows of W per thread before the product forks

/** C[m, n] from its sum: alpha·sum, plus the bias or beta·C (C is not read when beta = 0). */
inline void store(const Gemm& g, int64_t m, int64_t n, float sum) {
  float& c = g.C[m * g.ldc + n];
  const float add = g.bias ? g.bias[n] : (g.beta != 0 ? g.beta * c : 0.0f);
  c = g.alpha * sum + add;
}

/** Rows [n0, n0 + R) of W (R ≤ 4) against rows [m0, m0 + MB) of x. */
template <int R, int MB>
void tile(const Gemm& g, int64_t m0, int64_t n0) {
  const int64_t K = g.K, full = K - K % 4;
  const float* w[R];
  for (int r = 0; r < R; r++) w[r] = g.B + (n0 + r) * g.ldb;
  const float* x[MB];
  for (int i = 0; i < MB; i++) x[i] = g.A + (m0 + i) * g.lda;
  float32x4_t acc[MB][R];
  for (int i = 0; i < MB; i++)
    for (int r = 0; r < R; r++) acc[i][r] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < full; k += 4) {
    float32x4_t wv[R];
    for (int r = 0; r < R; r++) wv[r] = vld1q_f32(w[r] + k);
    for (int i = 0; i < MB; i++) {
      const float32x4_t xv = vld1q_f32(x[i] + k);
      for (int r = 0; r < R; r++) acc[i][r] = vfmaq_f32(acc[i][r], xv, wv[r]);
    }
  }
  for (int i = 0; i < MB; i++) {
    for (int r = 0; r < R; r++) {
      float s = vaddvq_f32(acc[i][r]);
      for (int64_t k = full; k < K; k++) s = std::fma(x[i][k], w[r][k], s);
      store(g, m0 + i, n0 + r, s);
    }
  }
}

/** Rows [n0, n0 + R) of W against every row of x, in passes of at most kRowsPerPass rows. */
template <int R>
void rowBlock(const Gemm& g, int64_t n0) {
  for (int64_t m = 0; m < g.M; m += kRowsPerPass) {
    switch (std::min<int64_t>(kRowsPerPass, g.M - m)) {
      case 4: tile<R, 4>(g, m, n0); break;
      case 3: tile<R, 3>(g, m, n0); break;
      case 2: tile<R, 2>(g, m, n0); break;
      default: tile<R, 1>(g, m, n0); break;
    }
  }
}

void rows(const Gemm& g, int64_t lo, int64_t hi) {
  int64_t n = lo;
  for (; n + 4 <= hi; n += 4) rowBlock<4>(g, n);
  switch (hi - n) {
    case 3: rowBlock<3>(g, n); break;
    case 2: rowBlock<2>(g, n); break;
    case 1: rowBlock<1>(g, n); break;
    default: break;
  }
}

}  // namespace

void gemmThinNeon(const Gemm& g) {
  for (int64_t b = 0; b < g.batch; b++) {
    Gemm one = g;
    one.A = g.A + b * g.strideA;
    one.B = g.B + b * g.strideB;
    one.C = g.C + b * g.strideC;
    // Blocks of four rows per chunk, so a thread's rows start on a block.
    parallelRange((one.N + 3) / 4, kRowGrain / 4, [&](int64_t lo, int64_t hi) { rows(one, lo * 4, std::min(one.N, hi * 4)); });
  }
}

}  // namespace sc
#endif
