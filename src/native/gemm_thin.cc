// Thin float32 products C = alpha·x·Wᵀ (+ bias | + beta·C): a few rows of x (M ≤ kThinGemmRows)
// against a linear layer's weight W [N, K] row-major, as PyTorch stores it: a batch-8 decode step.
//
// At M = 8 oneDNN 2.6.3 read W at 8.6-13 GB/s on the AVX-512 Xeon (dnnl_sgemm and the matmul
// primitive both pack W per call), against 27 GB/s for one row (dnnl_sgemm's gemv): a batch of 8
// cost ~3x one row. Here W is read once, straight: four rows of W at a time against up to
// kRowsPerPass rows of x held in registers (x's row and W's row are both contiguous along K), so
// the 8 rows of a decode batch share every load of W. The sums' order differs from oneDNN's (a
// float32 rounding apart).
//
// The first pass over a block also prefetches W kPrefetchBytes ahead: a decode step's layer weights
// are many and short (210 a SmolLM2-135M step, 576 × 576 is 1.3 MB), and the hardware prefetcher
// alone streamed them at 7.9 GB/s at 8 rows (as gemv_bf16.cc found for the one-row bf16 product).
#include <algorithm>
#include <cstdint>

#include "gemm.h"
#include "threads.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SC_HAVE_THIN_F32 1
#include <immintrin.h>
#else
#define SC_HAVE_THIN_F32 0
#endif

namespace sc {

namespace {

#if SC_HAVE_THIN_F32
bool cpuHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

constexpr int kRowsPerPass = 6;  // rows of x per pass over a block of W: 4 x 6 accumulators of 32 registers

/** How far ahead of the rows being read W is prefetched (gemv_bf16.cc's sweep: 8-16 KB best). */
constexpr int64_t kPrefetchBytes = 12288;

/** v's upper eight lanes added to its lower eight. */
__attribute__((target("avx512f,avx2,fma")))
inline __m256 fold(__m512 v) {
  // The zero-masked extracts: GCC 12's plain ones (and the 512-to-256 cast) warn of an uninitialised operand.
  const __m512d d = _mm512_castps_pd(v);
  return _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 0)),
                       _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 1)));
}

/** The four sums of a, b, c, d's 16 lanes, in that order. */
__attribute__((target("avx512f,avx2,fma")))
inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m256 ab = _mm256_hadd_ps(fold(a), fold(b));  // a01 a23 b01 b23 | a45 a67 b45 b67
  const __m256 cd = _mm256_hadd_ps(fold(c), fold(d));
  const __m256 all = _mm256_hadd_ps(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
  return _mm_add_ps(_mm256_castps256_ps128(all), _mm256_extractf128_ps(all, 1));
}

/** C[m, n0 .. n0+R) from its sums: alpha·sum, plus the bias or beta·C (C is not read when beta = 0). */
template <int R>
__attribute__((target("avx512f,avx2,fma")))
inline void store(const Gemm& g, int64_t m, int64_t n0, __m128 sums) {
  float* c = g.C + m * g.ldc + n0;
  if (R == 4) {
    __m128 v = _mm_mul_ps(_mm_set1_ps(g.alpha), sums);
    if (g.bias) v = _mm_add_ps(v, _mm_loadu_ps(g.bias + n0));
    else if (g.beta != 0) v = _mm_fmadd_ps(_mm_set1_ps(g.beta), _mm_loadu_ps(c), v);
    _mm_storeu_ps(c, v);
    return;
  }
  alignas(16) float s[4];
  _mm_store_ps(s, sums);
  for (int r = 0; r < R; r++) {
    const float add = g.bias ? g.bias[n0 + r] : (g.beta != 0 ? g.beta * c[r] : 0.0f);
    c[r] = g.alpha * s[r] + add;
  }
}

/**
 * Rows [n0, n0 + R) of W (R ≤ 4) against rows [m0, m0 + MB) of x, K in 16-float vectors. `ahead`:
 * the first pass over these rows, which prefetches W's bytes kPrefetchBytes on, short of `end`.
 */
template <int R, int MB>
__attribute__((target("avx512f,avx2,fma")))
void tile(const Gemm& g, int64_t m0, int64_t n0, bool ahead, const char* end) {
  const int64_t K = g.K;
  const int64_t full = K - K % 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (K % 16)) - 1);
  const float* w[R];
  for (int r = 0; r < R; r++) w[r] = g.B + (n0 + r) * g.ldb;
  const float* x[MB];
  for (int i = 0; i < MB; i++) x[i] = g.A + (m0 + i) * g.lda;
  __m512 acc[MB][R];
  for (int i = 0; i < MB; i++)
    for (int r = 0; r < R; r++) acc[i][r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < full; k += 16) {
    if (ahead) {
      for (int r = 0; r < R; r++) {
        const char* p = reinterpret_cast<const char*>(w[r] + k) + kPrefetchBytes;
        if (p < end) _mm_prefetch(p, _MM_HINT_T0);
      }
    }
    __m512 wv[R];
    for (int r = 0; r < R; r++) wv[r] = _mm512_loadu_ps(w[r] + k);
    for (int i = 0; i < MB; i++) {
      const __m512 xv = _mm512_loadu_ps(x[i] + k);
      for (int r = 0; r < R; r++) acc[i][r] = _mm512_fmadd_ps(xv, wv[r], acc[i][r]);
    }
  }
  if (tail) {
    __m512 wv[R];
    for (int r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_ps(tail, w[r] + full);
    for (int i = 0; i < MB; i++) {
      const __m512 xv = _mm512_maskz_loadu_ps(tail, x[i] + full);
      for (int r = 0; r < R; r++) acc[i][r] = _mm512_fmadd_ps(xv, wv[r], acc[i][r]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < MB; i++) {
    // W rows past R sum to 0 (the constant conditions fold away).
    const __m128 s = sum4(acc[i][0], R > 1 ? acc[i][R > 1 ? 1 : 0] : zero, R > 2 ? acc[i][R > 2 ? 2 : 0] : zero,
                          R > 3 ? acc[i][R > 3 ? 3 : 0] : zero);
    store<R>(g, m0 + i, n0, s);
  }
}

/** Rows [n0, n0 + R) of W against every row of x in passes of at most kRowsPerPass rows, as equal as can be (W stays in cache). */
template <int R>
void rowBlock(const Gemm& g, int64_t n0, const char* end) {
  const int64_t passes = (g.M + kRowsPerPass - 1) / kRowsPerPass;
  for (int64_t p = 0, m = 0; p < passes; p++) {
    const int64_t last = g.M * (p + 1) / passes;
    const bool ahead = p == 0;
    switch (last - m) {
      case 6: tile<R, 6>(g, m, n0, ahead, end); break;
      case 5: tile<R, 5>(g, m, n0, ahead, end); break;
      case 4: tile<R, 4>(g, m, n0, ahead, end); break;
      case 3: tile<R, 3>(g, m, n0, ahead, end); break;
      case 2: tile<R, 2>(g, m, n0, ahead, end); break;
      default: tile<R, 1>(g, m, n0, ahead, end); break;
    }
    m = last;
  }
}

void rows(const Gemm& g, int64_t lo, int64_t hi) {
  // Prefetches stop at this chunk's last row of W: what lies past it is another thread's, or not W.
  const char* end = reinterpret_cast<const char*>(g.B + (hi - 1) * g.ldb + g.K);
  int64_t n = lo;
  for (; n + 4 <= hi; n += 4) rowBlock<4>(g, n, end);
  switch (hi - n) {
    case 3: rowBlock<3>(g, n, end); break;
    case 2: rowBlock<2>(g, n, end); break;
    case 1: rowBlock<1>(g, n, end); break;
    default: break;
  }
}

constexpr int64_t kRowGrain = 256;  // rows of W per thread before the product forks
#endif

}  // namespace

bool gemmThinApplies(const Gemm& g) {
#if SC_HAVE_THIN_F32
  return !g.transA && g.transB && g.M >= 1 && g.M <= kThinGemmRows && g.K >= 1 && cpuHasAvx512();
#else
  (void)g;
  return false;
#endif
}

bool gemmThin(const Gemm& g) {
  if (!gemmThinApplies(g)) return false;
#if SC_HAVE_THIN_F32
  for (int64_t b = 0; b < g.batch; b++) {
    Gemm one = g;
    one.A = g.A + b * g.strideA;
    one.B = g.B + b * g.strideB;
    one.C = g.C + b * g.strideC;
    // Blocks of four rows per chunk, so a thread's rows start on a block.
    parallelRange((one.N + 3) / 4, kRowGrain / 4, [&](int64_t lo, int64_t hi) { rows(one, lo * 4, std::min(one.N, hi * 4)); });
  }
#endif
  return true;
}

}  // namespace sc
