// The products of a few rows of x (decode) with a Q4_0x8, Q8_0x8 or Q5_0x8 matrix on 512-bit
// AVX512-VNNI. Eight rows of W are one stream (quant_blocks.h's layout), and a block of them, 256
// weights, gives four vectors of codes, one per 8 codes of each row: Q4_0x8's two 64-byte loads split
// into nibbles (six µops), Q8_0x8's four loads moved to c + 128 (four xors), Q5_0x8's nibbles with
// their fifth bits added as masks (eight more: a mask load and a masked add a vector, the layout
// holding each vector's 64 fifth bits as one word); then the eight scales put in lane
// pairs and widened (three), four vpdpbusd, each against 8 codes of x broadcast to every row's lane
// pair, and the sums' conversion, scale and accumulation (three): ~16 µops per 256 weights, against
// ~14 per 128 for a Q4_0 row and ~16 for a Q8_0 row (quant_rows_avx512.cc: codes and scales gathered
// by word permutes from 18- and 34-byte blocks, a scale vector per row). Row r's sums lie in lanes 2r
// (its bytes 0-3 of each 8 codes) and 2r + 1 (bytes 4-7), each started at −centre·Σ of the x it meets
// (rows8Starts) so the codes go in unsigned; the two lanes are added last. Exact in int32 per block
// (|c|·|q| ≤ 255·127, 16 products a lane); a row's value is Σ ŵ·x̂ up to float32 rounding and
// depends only on its own bytes (neither its group nor the thread count).
#include "quant_rows8.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cstring>

#include "rows8_lanes.h"

namespace sc {
namespace {

using rows8::broadcast8;

/** x's M rows as the kernels read them (quant_rows8.h). */
struct Rows8X {
  const int8_t* q;
  const float* d;
  const int64_t* starts;
  int64_t K;
};

/**
 * Where in a block of 32 codes of x code vector i of a format meets x (8 codes a row each): Q8_0x8's
 * chunk i is codes 8i..8i+7; Q4_0x8's and Q5_0x8's vectors are chunk 0's low nibbles (codes 0-7), its
 * high (16-23), chunk 1's low (8-15) and high (24-31).
 */
template <QFmt F>
constexpr int xAt(int i) {
  return F == QFmt::Q8_0x8 ? 8 * i : (i == 1 ? 16 : i == 2 ? 8 : 8 * i);
}

/** A block of eight rows' codes as four vectors of unsigned bytes, vector i meeting x at xAt<F>(i). */
template <QFmt F>
SC_ROWS8_TARGET inline void blockCodes(const uint8_t* at, __m512i (&c)[4]) {
  if constexpr (F == QFmt::Q4_0x8 || F == QFmt::Q5_0x8) {
    const __m512i low4 = _mm512_set1_epi8(15);
    const uint8_t* codes = at + qRows8CodesAt(F);
    const __m512i v0 = _mm512_loadu_si512(codes), v1 = _mm512_loadu_si512(codes + 64);
    c[0] = _mm512_and_si512(v0, low4);
    c[1] = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4);
    c[2] = _mm512_and_si512(v1, low4);
    c[3] = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4);
    if constexpr (F == QFmt::Q5_0x8) {
      // The fifth bits of codes 8k..8k+7 of the eight rows are the 64-bit word k of the block's prefix
      // (qRows8PrefixAt): bit 8r + j row r's code 8k + j, the byte of vector i whose code it is.
      const __m512i sixteen = _mm512_set1_epi8(16);
      for (int i = 0; i < 4; i++) {
        uint64_t fifth;
        std::memcpy(&fifth, at + qRows8PrefixAt(xAt<F>(i) / 8, 0), 8);
        c[i] = _mm512_mask_add_epi8(c[i], _cvtu64_mask64(fifth), c[i], sixteen);
      }
    }
  } else {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int i = 0; i < 4; i++) c[i] = _mm512_xor_si512(_mm512_loadu_si512(at + 16 + 64 * i), flip);
  }
}

/**
 * The S groups of eight rows g[0..S) against M rows of x, y's rows written: S streams of W read side
 * by side (x's vectors loaded once for them), each block's codes and scales unpacked once for the M rows.
 */
template <QFmt F, int M, bool Ahead, int S>
SC_ROWS8_TARGET void groupsAtOnce(const Rows8X& x, const uint8_t* W, const float* bias, float* y, int64_t ldy, const int64_t (&g)[S]) {
  constexpr int kBlockBytes = kRows8 * qBlockBytes(F);
  const int64_t blocks = x.K / 32;
  const uint8_t* p[S];
  __m512 acc[S][M];
  rows8::startStreams(W, blocks * kBlockBytes, g, p, acc);
  for (int64_t b = 0; b < blocks; b++) {
    for (int s = 0; s < S; s++) {
      const uint8_t* at = p[s] + b * kBlockBytes;
      rows8::askAhead<Ahead>(at, kBlockBytes);
      __m512i c[4];
      blockCodes<F>(at, c);
      const __m512 d = rows8::rowPairs(at);
      for (int m = 0; m < M; m++) {
        const int8_t* xb = x.q + m * x.K + 32 * b;
        __m512i sum = _mm512_set1_epi64(x.starts[m * blocks + b]);
        for (int i = 0; i < 4; i++) sum = _mm512_dpbusd_epi32(sum, c[i], broadcast8(xb + xAt<F>(i)));
        acc[s][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, _mm512_set1_ps(x.d[m * blocks + b])), acc[s][m]);
      }
    }
  }
  rows8::storeStreams(acc, bias, y, ldy, g);
}

template <QFmt F>
void rowsOf(const Rows8X& x, int M, const uint8_t* W, const float* bias, float* y, int64_t ldy, int64_t g0, int64_t g1) {
  rows8::eachGroups(M, g0, g1, [&](auto rows, auto ahead, const auto& groups) {
    groupsAtOnce<F, decltype(rows)::value, decltype(ahead)::value>(x, W, bias, y, ldy, groups);
  });
}

/**
 * The even and odd lanes' sums of a block of 32 codes (bytes 0-3, and 4-7, of each 8) in SSE2: the
 * codes moved to unsigned (+128, an xor), the other lane's bytes masked to 0, and psadbw's sums of
 * 8 bytes added up, less the 16 codes' 128s. Exact: the same integers as a byte-by-byte loop, which
 * GCC left scalar (~0.9 % of a SmolLM2-135M Q4_0 decode token in perf: ~3,100 blocks a token).
 */
inline void laneSums(const int8_t* x, int32_t& even, int32_t& odd) {
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80)), evenBytes = _mm_set1_epi64x(0x00000000FFFFFFFFLL), zero = _mm_setzero_si128();
  const __m128i a = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)), flip);
  const __m128i b = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16)), flip);
  const __m128i e = _mm_add_epi64(_mm_sad_epu8(_mm_and_si128(a, evenBytes), zero), _mm_sad_epu8(_mm_and_si128(b, evenBytes), zero));
  const __m128i o = _mm_add_epi64(_mm_sad_epu8(_mm_andnot_si128(evenBytes, a), zero), _mm_sad_epu8(_mm_andnot_si128(evenBytes, b), zero));
  even = _mm_cvtsi128_si32(_mm_add_epi64(e, _mm_unpackhi_epi64(e, e))) - 16 * 128;
  odd = _mm_cvtsi128_si32(_mm_add_epi64(o, _mm_unpackhi_epi64(o, o))) - 16 * 128;
}

}  // namespace

void rows8Starts(const int8_t* xq, int64_t M, int64_t K, int centre, int64_t* starts) {
  for (int64_t i = 0; i < M * K / 32; i++) {
    int32_t even, odd;
    laneSums(xq + 32 * i, even, odd);
    const uint64_t evenStart = static_cast<uint32_t>(-centre * even), oddStart = static_cast<uint32_t>(-centre * odd);
    starts[i] = static_cast<int64_t>((oddStart << 32) | evenStart);
  }
}

void quantRows8Avx512(QFmt f, const int8_t* xq, const float* xd, const int64_t* starts, int M, const uint8_t* W, int64_t K, const float* bias,
                      float* y, int64_t ldy, int64_t g0, int64_t g1) {
  const Rows8X x{xq, xd, starts, K};
  if (f == QFmt::Q8_0x8) rowsOf<QFmt::Q8_0x8>(x, M, W, bias, y, ldy, g0, g1);
  else if (f == QFmt::Q5_0x8) rowsOf<QFmt::Q5_0x8>(x, M, W, bias, y, ldy, g0, g1);
  else rowsOf<QFmt::Q4_0x8>(x, M, W, bias, y, ldy, g0, g1);
}

}  // namespace sc

#else
namespace sc {
void rows8Starts(const int8_t*, int64_t, int64_t, int, int64_t*) {}
void quantRows8Avx512(QFmt, const int8_t*, const float*, const int64_t*, int, const uint8_t*, int64_t, const float*, float*, int64_t, int64_t, int64_t) {}
}  // namespace sc
#endif
