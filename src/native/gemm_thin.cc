// Thin float32 products C = alpha·x·Wᵀ (+ bias | + beta·C): a few rows of x (M ≤ kThinGemmRows)
// against a linear layer's weight W [N, K] row-major, as PyTorch stores it: a decode step.
//
// At M = 8 oneDNN 2.6.3 read W at 8.6-13 GB/s on the AVX-512 Xeon (dnnl_sgemm and the matmul
// primitive both pack W per call), against 27 GB/s for one row (dnnl_sgemm's gemv) from cache: a
// batch of 8 cost ~3x one row. Here W is read once, straight: three rows of W at a time (two from 9
// rows of x) against up to kWideRowsPerPass rows of x in registers, so the rows of a decode batch
// share every load of W. x is packed first (PackedX) so the loop reads it through one pointer. The
// sums' order differs from oneDNN's (a float32 rounding apart).
//
// The first pass over a block also prefetches W kPrefetchBytes ahead: a decode step's layer weights
// are many and short (211 a SmolLM2-135M step, 576 × 576 is 1.3 MB), and the hardware prefetcher
// alone streamed them at 7.9 GB/s at 8 rows (as gemv_bf16.cc found for the one-row bf16 product).
// Over a decode step's distinct weights (bench:native-gemm --decode-step) the stream is what costs:
// at 8 rows 45 ms for SmolLM2's 538 MB (11.9 GB/s), at one row 37 ms (14.7 GB/s) on the Xeon; on an
// AMD EPYC (Zen 4) 33-37 ms at 8 rows, 28-30 with the L1 prefetch and x in registers (below), and at
// one row 22-24 ms, 17-22 reading W one row at a time (wRowsFor).
// This is the AVX-512 kernel (cpuFeatures().avx512); arm64 takes gemm_thin_neon.cc's.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu_features.h"
#include "gemm.h"
#include "thin_neon.h"
#include "threads.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SC_HAVE_THIN_F32 1
#include <immintrin.h>

#include "lane_sums.h"
#else
#define SC_HAVE_THIN_F32 0
#endif

namespace sc {

namespace {

#if SC_HAVE_THIN_F32
/** Rows of x per pass over a block of W: three rows of W against eight rows of x are 24 accumulators of 32 registers. */
constexpr int kRowsPerPass = 8;
/** Above kRowsPerPass rows in one pass: two rows of W against twelve rows of x (24 accumulators). */
constexpr int kWideRowsPerPass = 12;

/**
 * How far ahead of the rows being read W is prefetched, and into L2 (_MM_HINT_T1). A sweep over a
 * SmolLM2 decode step's 538 MB of distinct weights at 8 rows (one thread, standalone C++, loaded
 * machine): 24-48 KB into L2 11.9-12.8 GB/s, 12 KB into L1 (the earlier choice) 11.7, no prefetch
 * 8.9, prefetchnta 6.0; the distance mattered less than the hint.
 */
constexpr int64_t kPrefetchBytes = 24576;

/**
 * And from L2 into L1 (_MM_HINT_T0) this far ahead of the rows being read, in the same pass. On an
 * AMD EPYC (Zen 4), standalone C++ over the SmolLM2 step's 538 MB at 8 rows in huge pages: 27.7 ms
 * a step with the L2 prefetch alone, 24.6 with this one beside it (and x held in registers, below);
 * 512 B-2 KB alike, 256 B and 4 KB slower.
 */
constexpr int64_t kNearPrefetchBytes = 1024;

/** C[m, n0 .. n0+R) from its sums: alpha·sum, plus the bias or beta·C (C is not read when beta = 0). */
template <int R>
__attribute__((target("avx512f,avx2,fma")))
inline void store(const Gemm& g, int64_t m, int64_t n0, __m128 sums) {
  float* c = g.C + m * g.ldc + n0;
  alignas(16) float s[4];
  _mm_store_ps(s, sums);
  for (int r = 0; r < R; r++) {
    const float add = g.bias ? g.bias[n0 + r] : (g.beta != 0 ? g.beta * c[r] : 0.0f);
    c[r] = g.alpha * s[r] + add;
  }
}

/**
 * x's rows packed for the kernel: pass by pass (the rows [m, m + MB) of a pass), K in 16-float
 * vectors, each vector of the pass's MB rows side by side ([K/16][MB][16], zeros past K). The
 * inner loop then reads x through one pointer at fixed offsets: with a pointer per row of x GCC
 * ran out of general registers at 8 rows and spilled them in the loop.
 */
struct alignas(64) Vector16 {
  float lanes[16];
};
struct PackedX {
  std::vector<Vector16> v;
  int64_t vectors = 0;  // per row: ceil(K / 16)
  const float* pass(int64_t m) const { return reinterpret_cast<const float*>(v.data() + m * vectors); }
};

/** Rows [m0, m0 + MB) of x into `out` at pass m0's place (rows of one pass, see PackedX). */
void packPass(const Gemm& g, int64_t m0, int64_t MB, PackedX& out) {
  float* dst = reinterpret_cast<float*>(out.v.data() + m0 * out.vectors);
  for (int64_t k = 0; k < g.K; k += 16) {
    const int64_t n = std::min<int64_t>(16, g.K - k);
    for (int64_t i = 0; i < MB; i++, dst += 16) {
      std::copy(g.A + (m0 + i) * g.lda + k, g.A + (m0 + i) * g.lda + k + n, dst);
      std::fill(dst + n, dst + 16, 0.0f);
    }
  }
}

/**
 * Rows [n0, n0 + R) of W (R ≤ 4) against the MB rows of x packed at `xp` (rows m0 ..), K in
 * 16-float vectors. `ahead`: the first pass over these rows, which prefetches W's bytes
 * kPrefetchBytes on, short of `end`.
 */
template <int R, int MB>
__attribute__((target("avx512f,avx2,fma")))
void tile(const Gemm& g, const float* xp, int64_t m0, int64_t n0, bool ahead, const char* end) {
  const int64_t K = g.K;
  const int64_t full = K - K % 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (K % 16)) - 1);
  const float* w[R];
  for (int r = 0; r < R; r++) w[r] = g.B + (n0 + r) * g.ldb;
  __m512 acc[MB][R];
  for (int i = 0; i < MB; i++)
    for (int r = 0; r < R; r++) acc[i][r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < full; k += 16, xp += 16 * MB) {
    if (ahead) {
      for (int r = 0; r < R; r++) {
        const char* p = reinterpret_cast<const char*>(w[r] + k);
        if (p + kPrefetchBytes < end) _mm_prefetch(p + kPrefetchBytes, _MM_HINT_T1);
        if (p + kNearPrefetchBytes < end) _mm_prefetch(p + kNearPrefetchBytes, _MM_HINT_T0);
      }
    }
    __m512 wv[R];
    for (int r = 0; r < R; r++) wv[r] = _mm512_loadu_ps(w[r] + k);
    for (int i = 0; i < MB; i++) {
      __m512 xv = _mm512_load_ps(xp + 16 * i);
      // x stays in a register: GCC folds its load into each of the R products, and Zen 4 (one 512-bit
      // load a cycle) then loads 27 vectors for 24 FMAs at 8 rows (standalone C++, W in L2: 83 → 99.5
      // GFLOP/s on one core).
      asm("" : "+v"(xv));
      for (int r = 0; r < R; r++) acc[i][r] = _mm512_fmadd_ps(xv, wv[r], acc[i][r]);
    }
  }
  if (tail) {
    // x is packed with zeros past K; W is read masked (past it lies another row, or not W).
    __m512 wv[R];
    for (int r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_ps(tail, w[r] + full);
    for (int i = 0; i < MB; i++) {
      const __m512 xv = _mm512_load_ps(xp + 16 * i);
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

/** How x's M rows split into passes: as equal as can be, at most kWideRowsPerPass each. */
int64_t passesFor(int64_t M) { return (M + kWideRowsPerPass - 1) / kWideRowsPerPass; }

/**
 * Rows of W per block: three while a pass holds at most kRowsPerPass rows of x, else two (registers);
 * one for one row of x, which then reads W as one stream. On an AMD EPYC (Zen 4), standalone C++
 * over the SmolLM2 step's 538 MB in huge pages: 21.4 ms (25 GB/s) in blocks of three with the
 * prefetches, 16.6 ms (32 GB/s, what memchr reads) one row at a time without them; with them one
 * row at a time 22.8 ms — so there one row streams with no prefetch but the hardware's. On an Intel
 * Xeon (Emerald Rapids, no AMX; memchr 13.6 GB/s) the one stream keeps both prefetches
 * (rowBlock's ahead): bench:generate's fp32 SmolLM2-135M decode step, its worker alone alternated, 42.6-43.6
 * → 37.3-37.9 ms (14.4 GB/s); the L2 prefetch alone 39.9-40.6, the L1 one alone (1-2 KB) 40.4-44.3.
 */
int64_t wRowsFor(int64_t M) {
  if (M == 1) return 1;
  return (M + passesFor(M) - 1) / passesFor(M) <= kRowsPerPass ? 3 : 2;
}

/** Rows [n0, n0 + R) of W against every row of x, pass by pass (W stays in cache for the later passes). */
template <int R>
void rowBlock(const Gemm& g, const PackedX& x, int64_t n0, const char* end, bool prefetch) {
  const int64_t passes = passesFor(g.M);
  for (int64_t p = 0, m = 0; p < passes; p++) {
    const int64_t last = g.M * (p + 1) / passes;
    const bool ahead = p == 0 && prefetch;
    const float* xp = x.pass(m);
    switch (last - m) {
      case 12: tile<R, 12>(g, xp, m, n0, ahead, end); break;
      case 11: tile<R, 11>(g, xp, m, n0, ahead, end); break;
      case 10: tile<R, 10>(g, xp, m, n0, ahead, end); break;
      case 9: tile<R, 9>(g, xp, m, n0, ahead, end); break;
      case 8: tile<R, 8>(g, xp, m, n0, ahead, end); break;
      case 7: tile<R, 7>(g, xp, m, n0, ahead, end); break;
      case 6: tile<R, 6>(g, xp, m, n0, ahead, end); break;
      case 5: tile<R, 5>(g, xp, m, n0, ahead, end); break;
      case 4: tile<R, 4>(g, xp, m, n0, ahead, end); break;
      case 3: tile<R, 3>(g, xp, m, n0, ahead, end); break;
      case 2: tile<R, 2>(g, xp, m, n0, ahead, end); break;
      default: tile<R, 1>(g, xp, m, n0, ahead, end); break;
    }
    m = last;
  }
}

/** W's rows [lo, hi) in blocks of R (3, 2 or 1), then the rows left over. */
void rows(const Gemm& g, const PackedX& x, int64_t R, int64_t lo, int64_t hi) {
  // Prefetches stop at this chunk's last row of W: what lies past it is another thread's, or not W.
  const char* end = reinterpret_cast<const char*>(g.B + (hi - 1) * g.ldb + g.K);
  const bool prefetch = g.M > 1 || cpuIsIntel();  // one row: only on Intel (wRowsFor)
  int64_t n = lo;
  if (R == 1) {
    for (; n < hi; n++) rowBlock<1>(g, x, n, end, prefetch);
    return;
  }
  if (R == 3)
    for (; n + 3 <= hi; n += 3) rowBlock<3>(g, x, n, end, prefetch);
  for (; n + 2 <= hi; n += 2) rowBlock<2>(g, x, n, end, prefetch);
  if (n < hi) rowBlock<1>(g, x, n, end, prefetch);
}

constexpr int64_t kRowGrain = 256;  // rows of W per thread before the product forks
#endif

}  // namespace

bool gemmThinApplies(const Gemm& g) {
  const bool thin = !g.transA && g.transB && g.M >= 1 && g.M <= kThinGemmRows && g.K >= 1;
#if SC_HAVE_THIN_F32
  return thin && cpuFeatures().avx512;
#elif defined(__aarch64__)
  return thin && cpuFeatures().neon;  // gemm_thin_neon.cc
#else
  (void)thin;
  return false;
#endif
}

bool gemmThin(const Gemm& g) {
  if (!gemmThinApplies(g)) return false;
#if defined(__aarch64__)
  gemmThinNeon(g);
#elif SC_HAVE_THIN_F32
  const int64_t R = wRowsFor(g.M);
  const int64_t passes = passesFor(g.M);
  PackedX x;
  x.vectors = (g.K + 15) / 16;
  x.v.resize(static_cast<size_t>(g.M * x.vectors));
  for (int64_t b = 0; b < g.batch; b++) {
    Gemm one = g;
    one.A = g.A + b * g.strideA;
    one.B = g.B + b * g.strideB;
    one.C = g.C + b * g.strideC;
    for (int64_t p = 0, m = 0; p < passes; m = g.M * (p + 1) / passes, p++) packPass(one, m, g.M * (p + 1) / passes - m, x);
    // Blocks of R rows per chunk, so a thread's rows start on a block.
    parallelRange((one.N + R - 1) / R, kRowGrain / R, [&](int64_t lo, int64_t hi) { rows(one, x, R, lo * R, std::min(one.N, hi * R)); });
  }
#endif
  return true;
}

}  // namespace sc
