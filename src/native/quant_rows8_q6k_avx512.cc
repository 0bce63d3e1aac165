// The products of a few rows of x (decode) with a Q6_Kx8 matrix (quant_blocks.h: Q6_K's super-blocks
// of eight rows interleaved) on 512-bit AVX512-VNNI. Q6_K's row kernel (quant_rows_avx512.cc) meets x
// 64 codes of one row at a time and picks each 16's scale out of a vector by a permute; here each
// block of 32 weights of the eight rows is three vectors of bytes that give four vectors of six-bit
// codes (blockCodes), row r's first 16 weights in lane 2r and its next 16 in lane 2r + 1,
// against x's block interleaved to match (rows8Q6KX): four vpdpbusd from sums started at −32·Σ of
// the x each lane meets (rows8Starts), then one conversion, scale (the 16 lanes' scales, one load
// and a widening) and multiply-add for the block of all eight rows. Exact in int32 per block
// (|c|·|q| ≤ 63·127, 16 products a lane); a row's value is Σ d·sc·d_x·Σ(c − 32)·q up to float32
// rounding, and depends only on its own bytes (neither its group nor the thread count).
#include "quant_rows8.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cstring>

#include "rows8_lanes.h"

namespace sc {
namespace {

constexpr int kSuperBytes = kRows8 * 210;
/** Where a super-block's scales and its blocks' codes start (quant_blocks.h Q6_Kx8). */
constexpr int kScalesAt = 16, kCodesAt = 144, kBlockCodeBytes = 192;
/** vpternlog's table for C ? A : B (A, B, C its operands in order): bits where C is set from A, the rest from B. */
constexpr int kSelect = 0xe4;

/** x's M rows as the kernel reads them (quant_rows8.h rows8Q6KX): codes a block at a time in lane order, a start pair and a scale a block. */
struct Rows8Q6KX {
  const int8_t* q;
  const float* d;
  const int64_t* starts;
  int64_t K;
};

using rows8::broadcast8;

/**
 * A block's four vectors of six-bit codes (vector k: codes 4k..4k+3 of each row's two groups): the
 * first three are its three vectors' low six bits, the fourth their top two bits, brought to bits 0-1,
 * 2-3 and 4-5 by word shifts and put together by two selects (a bit of the other byte lands only
 * where a select or the mask drops it): 9 µops, where nibbles and a vector of top bits took 13.
 */
SC_ROWS8_TARGET inline void blockCodes(const uint8_t* at, __m512i (&v)[4]) {
  const __m512i low6 = _mm512_set1_epi8(0x3f), bits01 = _mm512_set1_epi8(0x03), bits45 = _mm512_set1_epi8(0x30), low4 = _mm512_set1_epi8(15);
  const __m512i a = _mm512_loadu_si512(at), b = _mm512_loadu_si512(at + 64), c = _mm512_loadu_si512(at + 128);
  v[0] = _mm512_and_si512(a, low6);
  v[1] = _mm512_and_si512(b, low6);
  v[2] = _mm512_and_si512(c, low6);
  const __m512i low = _mm512_ternarylogic_epi32(_mm512_srli_epi16(a, 6), _mm512_srli_epi16(b, 4), bits01, kSelect);
  v[3] = _mm512_ternarylogic_epi32(low, _mm512_and_si512(_mm512_srli_epi16(c, 2), bits45), low4, kSelect);
}

/**
 * The S groups of eight rows g[0..S) against M rows of x, y's rows written: S streams of W read side
 * by side, each block's codes and scales unpacked once for the M rows.
 */
template <int M, bool Ahead, int S>
SC_ROWS8_TARGET void groupsAtOnce(const Rows8Q6KX& x, const uint8_t* W, const float* bias, float* y, int64_t ldy, const int64_t (&g)[S]) {
  const int64_t supers = x.K / 256, blocks = x.K / 32;
  const uint8_t* p[S];
  __m512 acc[S][M];
  rows8::startStreams(W, supers * kSuperBytes, g, p, acc);
  for (int64_t u = 0; u < supers; u++) {
#pragma GCC unroll 4
    for (int s = 0; s < S; s++) {
      const uint8_t* at = p[s] + u * kSuperBytes;
      rows8::askAhead<Ahead>(at, kSuperBytes);
      const __m512 d = rows8::rowPairs(at);
      for (int c = 0; c < 8; c++) {
        __m512i v[4];
        blockCodes(at + kCodesAt + kBlockCodeBytes * c, v);
        const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + kScalesAt + 16 * c)));
        const __m512 scale = _mm512_mul_ps(_mm512_cvtepi32_ps(sc), d);
        for (int m = 0; m < M; m++) {
          const int64_t block = m * blocks + 8 * u + c;
          const int8_t* xb = x.q + 32 * block;
          __m512i sum = _mm512_set1_epi64(x.starts[block]);
          for (int k = 0; k < 4; k++) sum = _mm512_dpbusd_epi32(sum, v[k], broadcast8(xb + 8 * k));
          acc[s][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(scale, _mm512_set1_ps(x.d[block])), acc[s][m]);
        }
      }
    }
  }
  rows8::storeStreams(acc, bias, y, ldy, g);
}

}  // namespace

void rows8Q6KX(const int8_t* xq, int64_t M, int64_t K, int8_t* lanes) {
  for (int64_t b = 0; b < M * K / 32; b++)
    for (int k = 0; k < 4; k++)
      for (int half = 0; half < 2; half++) std::memcpy(lanes + 32 * b + 8 * k + 4 * half, xq + 32 * b + 16 * half + 4 * k, 4);
}

void quantRows8Q6KAvx512(const int8_t* xq, const float* xd, const int64_t* starts, int M, const uint8_t* W, int64_t K, const float* bias, float* y,
                         int64_t ldy, int64_t g0, int64_t g1) {
  const Rows8Q6KX x{xq, xd, starts, K};
  rows8::eachGroups(M, g0, g1, [&](auto rows, auto ahead, const auto& groups) {
    groupsAtOnce<decltype(rows)::value, decltype(ahead)::value>(x, W, bias, y, ldy, groups);
  });
}

}  // namespace sc

#else
namespace sc {
void rows8Q6KX(const int8_t*, int64_t, int64_t, int8_t*) {}
void quantRows8Q6KAvx512(const int8_t*, const float*, const int64_t*, int, const uint8_t*, int64_t, const float*, float*, int64_t, int64_t, int64_t) {}
}  // namespace sc
#endif
