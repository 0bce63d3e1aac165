// The products of a few rows of x (decode) with a Q4_Kx8 matrix (quant_blocks.h: Q4_K's super-blocks
// of eight rows interleaved) on 512-bit AVX512-VNNI. Q4_K's row kernel (quant_rows_avx512.cc) meets x
// a group of 32 at a time in one row's lanes, its scales unpacked a row at a time; here a pair of
// groups of the eight rows is four vectors of nibbles whose low and high halves are eight vectors
// of codes, row r's first group in lane 2r and its second in lane 2r + 1 (the layout pairs each
// byte's nibbles so), against x's two blocks interleaved to match (rows8KX): eight vpdpbusd, then one
// conversion, scale and multiply-add for the two groups of all eight rows. The 64 scales and 64
// mins come out of two vectors in a few shifts and masks (the layout keeps their low and top bits
// apart) in the same lane pairs; the mins meet x's d_x·Σq of each group in four multiply-adds a
// super-block. Codes are Q4_K's unsigned nibbles, so the sums start at 0. Exact in int32 per pair
// of groups (|c|·|q| ≤ 15·127, 32 products a lane); a row's value is Σ (d·sc·d_x·Σc·q −
// dmin·m·d_x·Σq) up to float32 rounding, and depends only on its own bytes (neither its group nor
// the thread count).
#include "quant_rows8.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cstring>

#include "rows8_lanes.h"

namespace sc {
namespace {

constexpr int kSuperBytes = kRows8 * 144;

/** x's M rows as the kernel reads them (quant_rows8.h rows8KX): codes in pairs of blocks, a scale and a min term a block. */
struct Rows8KX {
  const int8_t* q;
  const float* d;
  const float* t;
  int64_t K;
};

using rows8::broadcast8;

/** Two consecutive floats (a pair of groups' x scales or min terms) in every 64-bit lane. */
SC_ROWS8_TARGET inline __m512 broadcastPair(const float* p) {
  double v;
  std::memcpy(&v, p, 8);
  return _mm512_castpd_ps(_mm512_set1_pd(v));
}

/** A super-block's scales times d and mins times dmin, widened to float, vector c holding groups 2c and 2c + 1 in lane pairs (row r at 2r, 2r + 1). */
struct SuperScales {
  __m512 scales[4];
  __m512 mins[4];
};

SC_ROWS8_TARGET inline void superScales(const uint8_t* at, SuperScales& s) {
  const __m512i low = _mm512_loadu_si512(at + 32);
  const __m512i top = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 96)));
  // The top bits of indices 0-31 lie at bits 0-1 (scales) and 4-5 (mins), of 32-63 at 2-3 and 6-7: a
  // 16-bit shift of each half moves them to bits 4-5 (no bit of the other byte lands there).
  const __m512i scShift = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i mShift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  const __m512i bits45 = _mm512_set1_epi8(0x30), low4 = _mm512_set1_epi8(15);
  alignas(64) uint8_t sc[64], m[64];
  _mm512_store_si512(sc, _mm512_or_si512(_mm512_and_si512(low, low4), _mm512_and_si512(_mm512_sllv_epi16(top, scShift), bits45)));
  _mm512_store_si512(m, _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(low, 4), low4), _mm512_and_si512(_mm512_srlv_epi16(top, mShift), bits45)));
  // Row r's d (dmin) in lanes 2r and 2r + 1.
  const __m512 d = rows8::rowPairs(at), dmin = rows8::rowPairs(at + 16);
  for (int c = 0; c < 4; c++) {
    s.scales[c] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sc + 16 * c)))), d);
    s.mins[c] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(m + 16 * c)))), dmin);
  }
}

/**
 * The S groups of eight rows g[0..S) against M rows of x, y's rows written: S streams of W read side
 * by side, each super-block's codes and scales unpacked once for the M rows.
 */
template <int M, bool Ahead, int S>
SC_ROWS8_TARGET void groupsAtOnce(const Rows8KX& x, const uint8_t* W, const float* bias, float* y, int64_t ldy, const int64_t (&g)[S]) {
  const int64_t supers = x.K / 256, blocks = x.K / 32;
  const __m512i low4 = _mm512_set1_epi8(15);
  const uint8_t* p[S];
  __m512 acc[S][M];
  rows8::startStreams(W, supers * kSuperBytes, g, p, acc);
  for (int64_t u = 0; u < supers; u++) {
    // Unrolled, the streams' accumulators stay in registers (1.11x one row hot, this Xeon).
#pragma GCC unroll 4
    for (int s = 0; s < S; s++) {
      const uint8_t* at = p[s] + u * kSuperBytes;
      rows8::askAhead<Ahead>(at, kSuperBytes);
      SuperScales ss;
      superScales(at, ss);
      for (int c = 0; c < 4; c++) {
        // Vector k's low nibbles: codes 8k..8k+3 of groups 2c (lane 2r) and 2c + 1 (lane 2r + 1); its high: 8k+4..8k+7.
        __m512i lo[4], hi[4];
        for (int k = 0; k < 4; k++) {
          const __m512i v = _mm512_loadu_si512(at + 128 + 256 * c + 64 * k);
          lo[k] = _mm512_and_si512(v, low4);
          hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        }
        for (int m = 0; m < M; m++) {
          const int8_t* xb = x.q + m * x.K + 256 * u + 64 * c;
          __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
          for (int k = 0; k < 4; k++) {
            even = _mm512_dpbusd_epi32(even, lo[k], broadcast8(xb + 16 * k));
            odd = _mm512_dpbusd_epi32(odd, hi[k], broadcast8(xb + 16 * k + 8));
          }
          const __m512 scale = _mm512_mul_ps(ss.scales[c], broadcastPair(x.d + m * blocks + 8 * u + 2 * c));
          acc[s][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(even, odd)), scale, acc[s][m]);
        }
      }
      for (int m = 0; m < M; m++) {
        const float* t = x.t + m * blocks + 8 * u;
        for (int c = 0; c < 4; c++) acc[s][m] = _mm512_fnmadd_ps(ss.mins[c], broadcastPair(t + 2 * c), acc[s][m]);
      }
    }
  }
  rows8::storeStreams(acc, bias, y, ldy, g);
}

}  // namespace

void rows8KX(const int8_t* xq, const float* xd, int64_t M, int64_t K, int8_t* pairs, float* t) {
  for (int64_t b = 0; b < M * K / 32; b += 2) {
    const int8_t *first = xq + 32 * b, *second = first + 32;
    int8_t* out = pairs + 32 * b;
    for (int k = 0; k < 4; k++)
      for (int half = 0; half < 2; half++) {
        std::memcpy(out + 16 * k + 8 * half, first + 8 * k + 4 * half, 4);
        std::memcpy(out + 16 * k + 8 * half + 4, second + 8 * k + 4 * half, 4);
      }
  }
  for (int64_t b = 0; b < M * K / 32; b++) {
    int32_t sum = 0;
    for (int k = 0; k < 32; k++) sum += xq[32 * b + k];
    t[b] = xd[b] * static_cast<float>(sum);
  }
}

void quantRows8KAvx512(const int8_t* xq, const float* xd, const float* t, int M, const uint8_t* W, int64_t K, const float* bias, float* y,
                       int64_t ldy, int64_t g0, int64_t g1) {
  const Rows8KX x{xq, xd, t, K};
  rows8::eachGroups(M, g0, g1, [&](auto rows, auto ahead, const auto& groups) {
    groupsAtOnce<decltype(rows)::value, decltype(ahead)::value>(x, W, bias, y, ldy, groups);
  });
}

}  // namespace sc

#else
namespace sc {
void rows8KX(const int8_t*, const float*, int64_t, int64_t, int8_t*, float*) {}
void quantRows8KAvx512(const int8_t*, const float*, const float*, int, const uint8_t*, int64_t, const float*, float*, int64_t, int64_t, int64_t) {}
}  // namespace sc
#endif
