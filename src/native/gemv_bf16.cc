// Thin bf16 products x·Wᵀ: a few rows of x (M ≤ kThinBf16Rows) against a linear layer's weight W
// [N, K] row-major, bf16 operands, float32 accumulation and output: a decode step's linears. From
// kAmxThinRows rows, where the CPU has AMX and K is whole tiles, gemv_bf16_amx.cc serves; here is
// the AVX512-BF16 kernel for the rest (one row: batch-1 decode; any M on a CPU without AMX).
//
// oneDNN's matmul primitive (bf16.cc) reorders W into its blocked VNNI layout on every call when
// W comes in plain row-major: at M = 1 it reads W, writes the reorder and reads that again. Here
// W's rows are read once, straight: AVX512-BF16's vdpbf16ps multiplies pairs of bf16 (x's row and
// W's row are both contiguous along K) into float32 sums, four rows of W at a time against up to
// kRowsPerPass rows of x held in registers (more rows take another pass over the block, from L1).
// The products are exact in float32 (as oneDNN's); the sums' order differs (a float32 rounding
// apart). Each output's order is the same whatever M and whatever rows it is grouped with (its
// lanes summed in lane_sums.h's sum4 order), so a row's bits depend on neither.
//
// At 2+ rows the first pass over a block also prefetches the weight kPrefetchBytes ahead of the rows
// it reads: a decode step's layer weights are short (576 × 576 is 663 KB) and many (210 a SmolLM2-135M
// step), and without it four rows at a time streamed at 8.8 GB/s where the 56 MB head reached 20.9
// (bench/gemv_bf16.ts, one thread, the Xeon). One row of x takes its four rows of W one from each
// quarter of the range instead (oneRowFourStreams), four streams each read in order: on an AMD EPYC
// (Zen 4) one row of W at a time read 10.4-10.7 GB/s with the block prefetch, 18.5-22.4 without
// it, and four quarters 24-28 (a /tmp harness alternating the two builds: 1.12-1.36x from memory
// over SmolLM2's and Qwen2.5-0.5B's matrices, 1.5-2.2x from the caches).
// At 8 rows this kernel is bound by its arithmetic, not memory (28.5 ms a SmolLM2 step's products
// against oneDNN's packed 19.6): hence the AMX kernel.
#include "gemv_bf16.h"

#include <algorithm>

#include "cpu_features.h"
#include "thin_neon.h"
#include "threads.h"

#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10) || (defined(__clang__) && __clang_major__ >= 9))
#define SC_HAVE_THIN_BF16 1
#include <immintrin.h>

#include "lane_sums.h"
#else
#define SC_HAVE_THIN_BF16 0
#endif

namespace sc {

namespace {

#if SC_HAVE_THIN_BF16
/** Rows of x per pass over a block of W: 4 × 6 accumulators, 4 rows of W and x's row of 32 registers. */
constexpr int kRowsPerPass = 6;

/**
 * How far ahead of the rows being read the weight is prefetched. The hardware prefetcher alone left
 * the one-row product at 10 GB/s over a step's weights from memory; 4 KB ahead gave 13, 8–16 KB 14–15,
 * 32 KB no more (a C++ loop over SmolLM2-135M's 210 layer weights, one thread, loaded machine).
 */
constexpr int64_t kPrefetchBytes = 12288;

/** C[m, n] from its float32 sum: alpha·sum, plus the bias or beta·C (C is not read when beta = 0). */
inline void store(const GemmBf16& t, int64_t m, int64_t n, float sum) {
  float& c = t.C[m * t.N + n];
  const float add = t.bias ? t.bias[n] : (t.beta != 0 ? t.beta * c : 0.0f);
  c = t.alpha * sum + add;
}

/**
 * Rows [n0, n0 + R) of W (R ≤ 4) against rows [m0, m0 + MB) of x, K in 32-element vectors. `ahead`:
 * the first pass over these rows, which prefetches W's bytes kPrefetchBytes on, short of `end`.
 */
template <int R, int MB>
__attribute__((target("avx512f,avx512bw,avx512bf16")))
void tile(const GemmBf16& t, int64_t m0, int64_t n0, bool ahead, const char* end) {
  const int64_t K = t.K;
  const int64_t full = K - K % 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (K % 32)) - 1);
  const uint16_t* w[R];
  for (int r = 0; r < R; r++) w[r] = t.B + (n0 + r) * K;
  const uint16_t* x[MB];
  for (int i = 0; i < MB; i++) x[i] = t.A + (m0 + i) * K;
  __m512 acc[MB][R];
  for (int i = 0; i < MB; i++)
    for (int r = 0; r < R; r++) acc[i][r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < full; k += 32) {
    if (ahead) {
      for (int r = 0; r < R; r++) {
        const char* p = reinterpret_cast<const char*>(w[r] + k) + kPrefetchBytes;
        if (p < end) _mm_prefetch(p, _MM_HINT_T0);
      }
    }
    __m512bh wv[R];
    for (int r = 0; r < R; r++) wv[r] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w[r] + k));
    for (int i = 0; i < MB; i++) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x[i] + k));
      for (int r = 0; r < R; r++) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xv, wv[r]);
    }
  }
  if (tail) {
    __m512bh wv[R];
    for (int r = 0; r < R; r++) wv[r] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, w[r] + full));
    for (int i = 0; i < MB; i++) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, x[i] + full));
      for (int r = 0; r < R; r++) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xv, wv[r]);
    }
  }
  for (int i = 0; i < MB; i++) {
    if constexpr (R == 4) {
      alignas(16) float sums[4];
      _mm_store_ps(sums, sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
      for (int r = 0; r < 4; r++) store(t, m0 + i, n0 + r, sums[r]);
    } else {
      for (int r = 0; r < R; r++) store(t, m0 + i, n0 + r, sum1(acc[i][r]));
    }
  }
}

/**
 * One row of x against rows [lo, hi) of W (batch-1 decode): four rows at a time, one from each
 * quarter of the range, x's vector loaded once for the four, four chains in flight, and each
 * quarter read in order (four plain streams for the prefetchers; four adjacent rows side by side
 * interleave within a page, which the quantized twin, quant_rows_avx512.cc, found up to twice as
 * slow from memory). The last (hi − lo) mod 4 rows one at a time.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))
void oneRowFourStreams(const GemmBf16& t, int64_t lo, int64_t hi) {
  const int64_t K = t.K, full = K - K % 32, quarter = (hi - lo) / 4;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (K % 32)) - 1);
  for (int64_t i = 0; i < quarter; i++) {
    const uint16_t* w[4];
    for (int r = 0; r < 4; r++) w[r] = t.B + (lo + r * quarter + i) * K;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t k = 0; k < full; k += 32) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(t.A + k));
      for (int r = 0; r < 4; r++) acc[r] = _mm512_dpbf16_ps(acc[r], xv, reinterpret_cast<__m512bh>(_mm512_loadu_si512(w[r] + k)));
    }
    if (tail) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, t.A + full));
      for (int r = 0; r < 4; r++) acc[r] = _mm512_dpbf16_ps(acc[r], xv, reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, w[r] + full)));
    }
    alignas(16) float sums[4];
    _mm_store_ps(sums, sum4(acc[0], acc[1], acc[2], acc[3]));
    for (int r = 0; r < 4; r++) store(t, 0, lo + r * quarter + i, sums[r]);
  }
  const char* end = reinterpret_cast<const char*>(t.B + hi * t.K);
  for (int64_t n = lo + 4 * quarter; n < hi; n++) tile<1, 1>(t, 0, n, false, end);
}

/** Rows [n0, n0 + R) of W against every row of x in passes of at most kRowsPerPass rows, as equal as can be (W stays in L1). */
template <int R>
void rowBlock(const GemmBf16& t, int64_t n0, const char* end) {
  const int64_t passes = (t.M + kRowsPerPass - 1) / kRowsPerPass;
  for (int64_t p = 0, m = 0; p < passes; p++) {
    const int64_t last = t.M * (p + 1) / passes;
    const bool ahead = p == 0 && t.M > 1;  // one row streams W alone (rows)
    switch (last - m) {
      case 6: tile<R, 6>(t, m, n0, ahead, end); break;
      case 5: tile<R, 5>(t, m, n0, ahead, end); break;
      case 4: tile<R, 4>(t, m, n0, ahead, end); break;
      case 3: tile<R, 3>(t, m, n0, ahead, end); break;
      case 2: tile<R, 2>(t, m, n0, ahead, end); break;
      default: tile<R, 1>(t, m, n0, ahead, end); break;
    }
    m = last;
  }
}

void rows(const GemmBf16& t, int64_t lo, int64_t hi) {
  // Prefetches stop at this chunk's last row of W: what lies past it is another thread's, or not W.
  const char* end = reinterpret_cast<const char*>(t.B + hi * t.K);
  int64_t n = lo;
  if (t.M == 1) return oneRowFourStreams(t, lo, hi);
  for (; n + 4 <= hi; n += 4) rowBlock<4>(t, n, end);
  switch (hi - n) {
    case 3: rowBlock<3>(t, n, end); break;
    case 2: rowBlock<2>(t, n, end); break;
    case 1: rowBlock<1>(t, n, end); break;
    default: break;
  }
}
#endif

constexpr int64_t kRowGrain = 256;  // rows of W per thread before the product forks

}  // namespace

const char* thinBf16Product(const GemmBf16& t) {
  if (t.M < 1 || t.M > kThinBf16Rows || t.K < 1) return nullptr;
  if (t.M >= kAmxThinRows && thinBf16ProductAmx(t)) return "thin amx_bf16";
#if SC_HAVE_THIN_BF16
  if (!cpuFeatures().avx512bf16) return nullptr;
  // Blocks of four rows per chunk, so a thread's rows start on a block.
  parallelRange((t.N + 3) / 4, kRowGrain / 4, [&](int64_t lo, int64_t hi) { rows(t, lo * 4, std::min(t.N, hi * 4)); });
  return "thin avx512_bf16";
#elif defined(__aarch64__)
  if (!cpuFeatures().neon) return nullptr;
  return thinBf16ProductNeon(t, cpuFeatures().bf16);  // gemv_bf16_neon.cc
#else
  return nullptr;
#endif
}

}  // namespace sc
