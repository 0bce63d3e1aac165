// Our own GEMM, used when no kernel library is present and for tiny products where a library's
// call overhead exceeds the arithmetic. Cache-blocked in the usual way: a KC×NC panel of op(B)
// is packed into NR-wide strips, an MC×KC block of op(A) into MR-tall strips, and an MR×NR
// micro-kernel written for auto-vectorisation accumulates in registers.
#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "simd.h"
#include "threads.h"

namespace sc {
namespace {

constexpr int64_t MR = 6, NR = 16;
constexpr int64_t MC = 144, KC = 256, NC = 2048;

inline float atA(const Gemm& g, const float* A, int64_t i, int64_t k) {
  return g.transA ? A[k * g.lda + i] : A[i * g.lda + k];
}
inline float atB(const Gemm& g, const float* B, int64_t k, int64_t j) {
  return g.transB ? B[j * g.ldb + k] : B[k * g.ldb + j];
}

/** op(B)[k0:k0+kc, j0:j0+nc] → strips of NR columns, k-major inside a strip, zero-padded. */
void packB(const Gemm& g, const float* B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  for (int64_t js = 0; js < nc; js += NR) {
    const int64_t w = std::min(NR, nc - js);
    for (int64_t k = 0; k < kc; k++) {
      float* dst = out + js * kc + k * NR;
      if (!g.transB && w == NR) {
        std::memcpy(dst, B + (k0 + k) * g.ldb + j0 + js, NR * sizeof(float));
        continue;
      }
      int64_t j = 0;
      for (; j < w; j++) dst[j] = atB(g, B, k0 + k, j0 + js + j);
      for (; j < NR; j++) dst[j] = 0;
    }
  }
}

/** op(A)[i0:i0+mc, k0:k0+kc] → strips of MR rows, k-major inside a strip, zero-padded. */
void packA(const Gemm& g, const float* A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  for (int64_t is = 0; is < mc; is += MR) {
    const int64_t h = std::min(MR, mc - is);
    for (int64_t k = 0; k < kc; k++) {
      float* dst = out + is * kc + k * MR;
      int64_t i = 0;
      for (; i < h; i++) dst[i] = atA(g, A, i0 + is + i, k0 + k);
      for (; i < MR; i++) dst[i] = 0;
    }
  }
}

#if defined(__GNUC__) || defined(__clang__)
// Eight floats as one value: AVX2 keeps each in a ymm register; the baseline clone splits it in
// two SSE registers. Written this way the accumulators provably stay in registers.
typedef float v8 __attribute__((vector_size(32)));

/** acc = a-strip · b-strip over kc steps (MR×NR = 6×16 in 12 vector accumulators). */
SC_VECTOR_KERNEL(void, microKernel, (int64_t kc, const float* SC_RESTRICT a, const float* SC_RESTRICT b, float acc[MR][NR]), (kc, a, b, acc)) {
  v8 c[MR][2] = {};
  for (int64_t k = 0; k < kc; k++) {
    v8 b0, b1;  // (memcpy: packed B is not guaranteed 32-byte aligned)
    std::memcpy(&b0, b + k * NR, sizeof b0);
    std::memcpy(&b1, b + k * NR + 8, sizeof b1);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      const float ai = a[k * MR + i];
      c[i][0] += ai * b0;
      c[i][1] += ai * b1;
    }
  }
  for (int i = 0; i < MR; i++) {
    std::memcpy(acc[i], &c[i][0], sizeof(v8));
    std::memcpy(acc[i] + 8, &c[i][1], sizeof(v8));
  }
}
#else
void microKernel(int64_t kc, const float* a, const float* b, float acc[MR][NR]) {
  for (int64_t i = 0; i < MR; i++)
    for (int64_t j = 0; j < NR; j++) acc[i][j] = 0;
  for (int64_t k = 0; k < kc; k++)
    for (int64_t i = 0; i < MR; i++)
      for (int64_t j = 0; j < NR; j++) acc[i][j] += a[k * MR + i] * b[k * NR + j];
}
#endif

/** C = alpha·acc (+ beta·C on the first k block, else + C), for the h×w valid corner. */
inline void writeBack(const float acc[MR][NR], float* C, int64_t ldc, int64_t h, int64_t w, float alpha,
                      float beta, bool first) {
  for (int64_t i = 0; i < h; i++) {
    float* c = C + i * ldc;
    if (!first) for (int64_t j = 0; j < w; j++) c[j] += alpha * acc[i][j];
    else if (beta == 0) for (int64_t j = 0; j < w; j++) c[j] = alpha * acc[i][j];
    else for (int64_t j = 0; j < w; j++) c[j] = alpha * acc[i][j] + beta * c[j];
  }
}

/** One packed A block against one packed B panel. */
void macroKernel(int64_t mc, int64_t nc, int64_t kc, const float* pa, const float* pb, float* C,
                 int64_t ldc, float alpha, float beta, bool first) {
  float acc[MR][NR];
  for (int64_t js = 0; js < nc; js += NR)
    for (int64_t is = 0; is < mc; is += MR) {
      microKernel(kc, pa + is * kc, pb + js * kc, acc);
      writeBack(acc, C + is * ldc + js, ldc, std::min(MR, mc - is), std::min(NR, nc - js), alpha, beta, first);
    }
}

void blocked(const Gemm& g, const float* A, const float* B, float* C) {
  static thread_local std::vector<float> bufB;
  bufB.resize(static_cast<size_t>(KC * (NC + NR)));
  const int64_t mBlocks = (g.M + MC - 1) / MC;
  for (int64_t j0 = 0; j0 < g.N; j0 += NC) {
    const int64_t nc = std::min(NC, g.N - j0);
    for (int64_t k0 = 0; k0 < g.K; k0 += KC) {
      const int64_t kc = std::min(KC, g.K - k0);
      packB(g, B, k0, kc, j0, nc, bufB.data());
      const float* pb = bufB.data();
      const int nthr = threadsFor(2.0 * g.M * nc * kc, 2e6);
      (void)nthr;  // used by the OpenMP pragma only
#pragma omp parallel for schedule(static) num_threads(nthr) if (nthr > 1)
      for (int64_t ib = 0; ib < mBlocks; ib++) {
        static thread_local std::vector<float> bufA;
        bufA.resize(static_cast<size_t>(MC * KC));
        const int64_t i0 = ib * MC, mc = std::min(MC, g.M - i0);
        packA(g, A, i0, mc, k0, kc, bufA.data());
        macroKernel(mc, nc, kc, bufA.data(), pb, C + i0 * g.ldc + j0, g.ldc, g.alpha, g.beta, k0 == 0);
      }
    }
  }
}

/** Direct loops without packing, for products too small to repay it. */
SC_VECTOR_KERNEL(void, small, (const Gemm& g, const float* A, const float* B, float* C), (g, A, B, C)) {
  for (int64_t i = 0; i < g.M; i++) {
    float* c = C + i * g.ldc;
    if (g.beta == 0) std::fill(c, c + g.N, 0.0f);
    else if (g.beta != 1) for (int64_t j = 0; j < g.N; j++) c[j] *= g.beta;
    if (!g.transB) {
      for (int64_t k = 0; k < g.K; k++) {
        const float a = g.alpha * atA(g, A, i, k);
        const float* b = B + k * g.ldb;
        for (int64_t j = 0; j < g.N; j++) c[j] += a * b[j];
      }
    } else {
      for (int64_t j = 0; j < g.N; j++) {
        const float* b = B + j * g.ldb;
        float s = 0;
        if (!g.transA) {
          const float* a = A + i * g.lda;
#pragma omp simd reduction(+ : s)
          for (int64_t k = 0; k < g.K; k++) s += a[k] * b[k];
        } else {
          for (int64_t k = 0; k < g.K; k++) s += A[k * g.lda + i] * b[k];
        }
        c[j] += g.alpha * s;
      }
    }
  }
}

}  // namespace

void gemmOwn(const Gemm& g) {
  const bool tiny = g.M * g.N * g.K <= 16384 || g.M < 4;
  for (int64_t b = 0; b < g.batch; b++) {
    const float* A = g.A + b * g.strideA;
    const float* B = g.B + b * g.strideB;
    float* C = g.C + b * g.strideC;
    if (g.K == 0 || g.alpha == 0) {
      for (int64_t i = 0; i < g.M; i++)
        for (int64_t j = 0; j < g.N; j++) C[i * g.ldc + j] = g.beta == 0 ? 0.0f : g.beta * C[i * g.ldc + j];
    } else if (tiny) {
      small(g, A, B, C);
    } else {
      blocked(g, A, B, C);
    }
  }
}

}  // namespace sc
