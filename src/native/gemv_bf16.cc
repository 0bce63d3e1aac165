// Thin bf16 products x·Wᵀ: a single row of x (M ≤ kThinBf16Rows) against a linear layer's weight W
// [N, K] row-major, bf16 operands, float32 accumulation and output: a batch-1 decode step's linears.
//
// oneDNN's matmul primitive (bf16.cc) reorders W into its blocked VNNI layout on every call when
// W comes in plain row-major: at M = 1 it reads W, writes the reorder and reads that again, so a
// bf16 decode step of GPT-2 124M took as long in its GEMMs as the float32 one with twice the
// bytes (one thread, avx512_bf16). Here W's rows are read once, straight: AVX512-BF16's
// vdpbf16ps multiplies pairs of bf16 (x's row and W's row are both contiguous along K) into float32
// sums, four rows of W at a time against each row of x. The products are exact in float32 (as
// oneDNN's); the sums' order differs (a float32 rounding apart).
//
// Each block also prefetches the weight kPrefetchBytes ahead of the rows it reads: a decode step's
// layer weights are short (576 × 576 is 663 KB) and many (210 a SmolLM2-135M step), and without
// it they streamed at 8.8 GB/s where the 56 MB head reached 20.9 (bench/gemv_bf16.ts, one thread).
#include "gemv_bf16.h"

#include <algorithm>
#include <cstring>

#include "threads.h"

#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10) || (defined(__clang__) && __clang_major__ >= 9))
#define SC_HAVE_THIN_BF16 1
#include <immintrin.h>
#else
#define SC_HAVE_THIN_BF16 0
#endif

namespace sc {

namespace {

#if SC_HAVE_THIN_BF16
bool cpuHasThinBf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
  return has;
}

/** C[m, n] from its float32 sum: alpha·sum, plus the bias or beta·C (C is not read when beta = 0). */
inline void store(const GemmBf16& t, int64_t m, int64_t n, float sum) {
  float& c = t.C[m * t.N + n];
  const float add = t.bias ? t.bias[n] : (t.beta != 0 ? t.beta * c : 0.0f);
  c = t.alpha * sum + add;
}

/** The sum of v's 16 lanes (through memory: GCC 12's _mm512_reduce_add_ps warns of an uninitialised lane). */
__attribute__((target("avx512f")))
inline float laneSum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}

/**
 * How far ahead of the rows being read the weight is prefetched. The hardware prefetcher alone left
 * the one-row product at 10 GB/s over a step's weights from memory; 4 KB ahead gave 13, 8–16 KB 14–15,
 * 32 KB no more (a C++ loop over SmolLM2-135M's 210 layer weights, one thread, loaded machine).
 */
constexpr int64_t kPrefetchBytes = 12288;

/** Rows [n0, n0 + R) of W against every row of x. */
template <int R>
__attribute__((target("avx512f,avx512bw,avx512bf16")))
void rowBlock(const GemmBf16& t, int64_t n0, int64_t hi) {
  const int64_t K = t.K;
  const int64_t full = K - K % 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (K % 32)) - 1);
  const uint16_t* w[R];
  for (int r = 0; r < R; r++) w[r] = t.B + (n0 + r) * K;
  // The block's rows are contiguous: the byte kPrefetchBytes past each one read, up to this chunk's end.
  const char* ahead = reinterpret_cast<const char*>(w[0]) + kPrefetchBytes;
  const char* end = reinterpret_cast<const char*>(t.B + hi * K);
  for (int64_t m = 0; m < t.M; m++) {
    const uint16_t* x = t.A + m * K;
    __m512 acc[R];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < full; k += 32) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + k));
      if (m == 0) {
        for (int r = 0; r < R; r++) {
          const char* p = ahead + (r * K + k) * 2;
          if (p < end) _mm_prefetch(p, _MM_HINT_T0);
        }
      }
      for (int r = 0; r < R; r++) acc[r] = _mm512_dpbf16_ps(acc[r], xv, reinterpret_cast<__m512bh>(_mm512_loadu_si512(w[r] + k)));
    }
    if (tail) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, x + full));
      for (int r = 0; r < R; r++) acc[r] = _mm512_dpbf16_ps(acc[r], xv, reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, w[r] + full)));
    }
    for (int r = 0; r < R; r++) store(t, m, n0 + r, laneSum(acc[r]));
  }
}

void rows(const GemmBf16& t, int64_t lo, int64_t hi) {
  int64_t n = lo;
  for (; n + 4 <= hi; n += 4) rowBlock<4>(t, n, hi);
  for (; n < hi; n++) rowBlock<1>(t, n, hi);
}
#endif

constexpr int64_t kRowGrain = 256;  // rows of W per thread before the product forks

}  // namespace

bool thinBf16Product(const GemmBf16& t) {
#if SC_HAVE_THIN_BF16
  if (t.M < 1 || t.M > kThinBf16Rows || t.K < 1 || !cpuHasThinBf16()) return false;
  // Blocks of four rows per chunk, so a thread's rows start on a block.
  parallelRange((t.N + 3) / 4, kRowGrain / 4, [&](int64_t lo, int64_t hi) { rows(t, lo * 4, std::min(t.N, hi * 4)); });
  return true;
#else
  (void)t;
  return false;
#endif
}

}  // namespace sc
