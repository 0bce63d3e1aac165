// The thin bf16 product x·Wᵀ on arm64 (gemv_bf16.cc's contract: a few rows of x against a linear
// layer's bf16 W [N, K] row-major, float32 sums and output), for batch-1 to batch-8 decode.
//
// Two kernels, four rows of W against up to four rows of x, K in steps of 8 bf16:
//  - widened (any NEON): each bf16 becomes the float32 with the same bits above 16 (a shift), and
//    one FMA a lane adds the exact product: the arithmetic of the float32 fallback (exact products,
//    float32 sums), in this kernel's order.
//  - BFDOT (Armv8.6 BF16: Apple M2 and later, Graviton 3): a pair of products a lane and
//    instruction, twice the widened kernel's multiply-adds. Arm defines its sum of the pair with
//    round-to-odd and flushes subnormal inputs and results to zero (FEAT_EBF16 CPUs may round to
//    nearest instead), so its results are the widened kernel's within float32 rounding, not bit for
//    bit: test/tensor/backends/neon_kernels.test.ts states the bound.
// K's last K % 8 values are summed in scalar FMAs after the lanes.
#include "thin_neon.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "threads.h"

namespace sc {
namespace {

constexpr int kRowsPerPass = 4;  // rows of x: 16 accumulators, 8 widened halves of W (or 4 bf16 vectors), x's 2
constexpr int64_t kRowGrain = 256;  // rows of W per thread before the product forks

inline float widen(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float32x4_t widenLow(uint16x8_t v) { return vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16)); }
inline float32x4_t widenHigh(uint16x8_t v) { return vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(v), 16)); }

/** C[m, n] from its sum: alpha·sum, plus the bias or beta·C (C is not read when beta = 0). */
inline void store(const GemmBf16& t, int64_t m, int64_t n, float sum) {
  float& c = t.C[m * t.N + n];
  const float add = t.bias ? t.bias[n] : (t.beta != 0 ? t.beta * c : 0.0f);
  c = t.alpha * sum + add;
}

/** The lanes' sum plus the scalar tail [full, K) of x's row and W's row, then stored. */
template <int R, int MB>
inline void finish(const GemmBf16& t, float32x4_t (&acc)[MB][R], const uint16_t* const (&x)[MB],
                   const uint16_t* const (&w)[R], int64_t m0, int64_t n0, int64_t full) {
  for (int i = 0; i < MB; i++) {
    for (int r = 0; r < R; r++) {
      float s = vaddvq_f32(acc[i][r]);
      for (int64_t k = full; k < t.K; k++) s = std::fma(widen(x[i][k]), widen(w[r][k]), s);
      store(t, m0 + i, n0 + r, s);
    }
  }
}

/** A tile's operands: rows [n0, n0 + R) of W and [m0, m0 + MB) of x, their sums zeroed, K's whole steps of 8. */
template <int R, int MB>
struct Tile {
  const uint16_t* w[R];
  const uint16_t* x[MB];
  float32x4_t acc[MB][R];
  int64_t full;
  Tile(const GemmBf16& t, int64_t m0, int64_t n0) : full(t.K - t.K % 8) {
    for (int r = 0; r < R; r++) w[r] = t.B + (n0 + r) * t.K;
    for (int i = 0; i < MB; i++) x[i] = t.A + (m0 + i) * t.K;
    for (int i = 0; i < MB; i++)
      for (int r = 0; r < R; r++) acc[i][r] = vdupq_n_f32(0.0f);
  }
};

template <int R, int MB>
void tileWidened(const GemmBf16& t, int64_t m0, int64_t n0) {
  Tile<R, MB> o(t, m0, n0);
  const auto& w = o.w;
  const auto& x = o.x;
  auto& acc = o.acc;
  for (int64_t k = 0; k < o.full; k += 8) {
    float32x4_t lo[R], hi[R];
    for (int r = 0; r < R; r++) {
      const uint16x8_t v = vld1q_u16(w[r] + k);
      lo[r] = widenLow(v);
      hi[r] = widenHigh(v);
    }
    for (int i = 0; i < MB; i++) {
      const uint16x8_t v = vld1q_u16(x[i] + k);
      const float32x4_t xl = widenLow(v), xh = widenHigh(v);
      for (int r = 0; r < R; r++) acc[i][r] = vfmaq_f32(vfmaq_f32(acc[i][r], xl, lo[r]), xh, hi[r]);
    }
  }
  finish<R, MB>(t, acc, x, w, m0, n0, o.full);
}

template <int R, int MB>
__attribute__((target("arch=armv8.2-a+bf16")))
void tileBfdot(const GemmBf16& t, int64_t m0, int64_t n0) {
  Tile<R, MB> o(t, m0, n0);
  const auto& w = o.w;
  const auto& x = o.x;
  auto& acc = o.acc;
  for (int64_t k = 0; k < o.full; k += 8) {
    bfloat16x8_t wv[R];
    for (int r = 0; r < R; r++) wv[r] = vreinterpretq_bf16_u16(vld1q_u16(w[r] + k));
    for (int i = 0; i < MB; i++) {
      const bfloat16x8_t xv = vreinterpretq_bf16_u16(vld1q_u16(x[i] + k));
      for (int r = 0; r < R; r++) acc[i][r] = vbfdotq_f32(acc[i][r], xv, wv[r]);
    }
  }
  finish<R, MB>(t, acc, x, w, m0, n0, o.full);
}

template <int R, int MB>
void tile(const GemmBf16& t, int64_t m0, int64_t n0, bool bfdot) {
  if (bfdot) tileBfdot<R, MB>(t, m0, n0);
  else tileWidened<R, MB>(t, m0, n0);
}

template <int R>
void rowBlock(const GemmBf16& t, int64_t n0, bool bfdot) {
  for (int64_t m = 0; m < t.M; m += kRowsPerPass) {
    switch (std::min<int64_t>(kRowsPerPass, t.M - m)) {
      case 4: tile<R, 4>(t, m, n0, bfdot); break;
      case 3: tile<R, 3>(t, m, n0, bfdot); break;
      case 2: tile<R, 2>(t, m, n0, bfdot); break;
      default: tile<R, 1>(t, m, n0, bfdot); break;
    }
  }
}

void rows(const GemmBf16& t, int64_t lo, int64_t hi, bool bfdot) {
  int64_t n = lo;
  for (; n + 4 <= hi; n += 4) rowBlock<4>(t, n, bfdot);
  switch (hi - n) {
    case 3: rowBlock<3>(t, n, bfdot); break;
    case 2: rowBlock<2>(t, n, bfdot); break;
    case 1: rowBlock<1>(t, n, bfdot); break;
    default: break;
  }
}

}  // namespace

const char* thinBf16ProductNeon(const GemmBf16& t, bool bfdot) {
  parallelRange((t.N + 3) / 4, kRowGrain / 4, [&](int64_t lo, int64_t hi) { rows(t, lo * 4, std::min(t.N, hi * 4), bfdot); });
  return bfdot ? "thin neon_bf16" : "thin neon";
}

}  // namespace sc
#endif
