// The quantized products of many rows of x (an inference prefill: more rows than quant_rows_avx512.cc
// takes) on 512-bit AVX512-VNNI as integer GEMMs, for every format with integer codes (all but NF4
// and F16): x quantized per block of 32 (quantizeActivations, as at decode), W's rows repacked 16 at
// a time into a tile of unsigned codes where one 32-bit lane is one row of W, and each vpdpbusd
// multiplies four codes of 16 rows with the same four codes of x, broadcast: 64 products an
// instruction, no horizontal sum at the end. (The dequantized tiles + fp32 GEMM top out at this
// core's fp32 FMA peak; llama.cpp's prefill over the same file multiplies int8 too.) A tile is built
// once per product in the thread's scratch and met by every row of x: its cost is one pass over W.
//
// Tile of rows [n0, n0 + 16), per block b of 32 weights: 8 steps of 64 bytes, step s holding codes
// 4s..4s+3 of each row j at bytes 4j..4j+3 (unpackBlock's int8 codes c as c + 128), and for each
// half block of 16 the 16 rows' scale a and (the affine formats) offset b: w = a·c + b. Rows past N
// have scales and offsets 0. A sum starts at −128·Σq_x (over 16 weights where the format scales
// each 16: Q6_K; else 32), which takes the 128 back out: exact in int32 (|c·q| ≤ 255·127, 32 terms).
// y[m, n] = Σ_b (float(sum_b)·(a_b·d_x,b) + b_b·(d_x·Σq_x)_b) in block order, one float32 rounding a
// product and a sum: a row's value depends on neither the tile it lies in nor the thread count.
#include "quant_tiles_int8.h"

#include "quant_rows8.h"
#include "quant_tiles_int8_body.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define SC_INT8_TILES_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,f16c,fma")))

namespace sc {
namespace {

#define SC_QDOT_TARGET SC_INT8_TILES_TARGET
#include "quant_unpack_x86.h"
#undef SC_QDOT_TARGET

using tiles_int8::Int8Tile;
using tiles_int8::XSums;
using tiles_int8::kBlockTileBytes;
using tiles_int8::kTileRows;

struct Avx512Vnni {
  static constexpr int kCentre = 128;  // codes go into vpdpbusd unsigned
  static constexpr int kRowsPerPass = 8;  // one accumulator a row: eight independent vpdpbusd chains
  static constexpr bool kReadsRows8 = true;  // builds tiles from the interleaved formats (buildGroupTile)

  /**
   * Rows [n0, n0 + rows) of W (rows ≤ 16) into the tile's layout (the header's): each of the format's
   * blocks (32, 64 or 256 weights) of the 16 rows unpacked to int8 codes, moved to unsigned (+128, an
   * xor), and each 32 of them gathered into 8 vectors, vector s the rows' dword s; a and b of each 16.
   */
  template <QFmt F>
  SC_INT8_TILES_TARGET static void buildTile(const uint8_t* W, int64_t K, int64_t n0, int rows, Int8Tile& t) {
    if constexpr (F == QFmt::Q8_0 || F == QFmt::Q4_0 || F == QFmt::Q5_0 || qRows8Of32(F)) return buildGroupTile<F>(W, K, n0, rows, t);
    constexpr int BW = qBlockWeights(F);
    const int64_t units = K / BW, rowBytes = units * qBlockBytes(F);
    t.size(K / 32);
    alignas(64) int8_t codes[kTileRows][BW] = {};
    float a[kTileRows][BW / 16] = {}, off[kTileRows][BW / 16] = {};
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    // Row j's dword s of its 32-weight block p: dword j·BW/4 + 8p + s of the unpacked rows.
    const __m512i rowStarts = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(BW / 4));
    for (int64_t u = 0; u < units; u++) {
      for (int j = 0; j < rows; j++) {
        if constexpr (F == QFmt::Q4_Kx8) {
          rows8KUnpack(W, K, n0 + j, u, codes[j], a[j], off[j]);
        } else if constexpr (F == QFmt::Q6_Kx8) {
          rows8Q6KUnpack(W, K, n0 + j, u, codes[j], a[j]);
        } else {
          unpackBlock<F, Unpack>(W + (n0 + j) * rowBytes + u * qBlockBytes(F), codes[j], a[j], off[j]);
        }
      }
      // (Rows past `rows` are never unpacked: their codes are whatever, their scales and offsets 0.)
      for (int i = 0; i < kTileRows * BW / 64; i++) {
        __m512i* at = reinterpret_cast<__m512i*>(&codes[0][0]) + i;
        _mm512_store_si512(at, _mm512_xor_si512(_mm512_load_si512(at), flip));
      }
      for (int p = 0; p < BW / 32; p++) {
        const int64_t b = u * (BW / 32) + p;
        uint8_t* tile = t.codes + b * kBlockTileBytes;
        for (int s = 0; s < 8; s++) {
          _mm512_store_si512(tile + 64 * s, _mm512_i32gather_epi32(_mm512_add_epi32(rowStarts, _mm512_set1_epi32(8 * p + s)), &codes[0][0], 4));
        }
        tiles_int8::keepScales<F>(t, b, p, rows, a, off);
      }
    }
  }

  /** Dword `at` of each of the 16 rows rowAt apart (0 in the rows past `live`, which are not read). */
  SC_INT8_TILES_TARGET static __m512i rowDwords(__mmask16 live, __m512i rowAt, const uint8_t* at) {
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rowAt, at, 1);
  }

  /**
   * Q5_0x8's fifth bits as rowDwords reads a Q5_0 row's word: row j's 32 in lane j, from its group's
   * block (byte k of row r at qRows8PrefixAt(k, r)), the second group's `second` bytes on (0 where
   * that group is past the rows).
   */
  SC_INT8_TILES_TARGET static __m512i rows8FifthBits(const uint8_t* block, int64_t second, bool hasSecond) {
    const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + qRows8PrefixAt(0, 0)));
    const __m256i next = hasSecond ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + second + qRows8PrefixAt(0, 0))) : _mm256_setzero_si256();
    // A 128-bit lane holds a group's bytes k and k + 1 of the eight rows (k = 0, 2): row r's two as word r.
    const __m512i pairs = _mm512_shuffle_epi8(_mm512_inserti64x4(_mm512_castsi256_si512(first), next, 1),
                                              _mm512_broadcast_i32x4(_mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15)));
    // Row j's dword: its word in its group's first lane (bytes 0, 1), then in the second (bytes 2, 3).
    alignas(64) static constexpr int16_t kRowWords[32] = {0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15,
                                                          16, 24, 17, 25, 18, 26, 19, 27, 20, 28, 21, 29, 22, 30, 23, 31};
    return _mm512_permutexvar_epi16(_mm512_load_si512(kRowWords), pairs);
  }

  /** Q5_0's fifth bits of step s (codes 4s..4s+3) at bit 4 of each byte: ×0x00204081 moves bit k of four to bit 8k, no carries. */
  SC_INT8_TILES_TARGET static __m512i fifthBits(__m512i high, int s) {
    const __m512i four = _mm512_and_si512(_mm512_srli_epi32(high, 4 * s), _mm512_set1_epi32(15));
    return _mm512_slli_epi32(_mm512_and_si512(_mm512_mullo_epi32(four, _mm512_set1_epi32(0x00204081)), _mm512_set1_epi32(0x01010101)), 4);
  }

  /** Where code dword s (codes 4s..4s+3) of a block starts, from the block: past a row's scale (Q5_0's fifth bits too), or an interleaved block's chunks. */
  template <QFmt F>
  static constexpr int codeDwordAt(int s) {
    return qRows8(F) ? 64 * (s / 2) + 4 * (s % 2) : (F == QFmt::Q5_0 ? 6 : 2) + 4 * s;
  }

  /**
   * buildTile for the formats of one fp16 scale per 32 codes held in order (Q8_0: a byte a code; Q4_0:
   * codes 0-15 in the low nibbles of 16 bytes, 16-31 in the high; Q5_0: the same with each code's fifth
   * bit in a word of its own), straight from W: the tile's step s is dword s of the codes, so each step
   * of the 16 rows is one gather (two nibble steps for Q4_0 and Q5_0), with no unpacked copy in between.
   * The unsigned codes are c + 128 with c the format's centred code: Q8_0 q ^ 0x80, Q4_0 n + 120, Q5_0 n + 112.
   * From Q4_0x8, Q8_0x8 or Q5_0x8 (quant_blocks.h) the same tile is read from the interleaved blocks:
   * the 16 rows are two groups of eight (n0 is a multiple of 16), row j's scale at 2·(j mod 8) of its
   * group's block, Q5_0's fifth bits transposed in the block's prefix (rows8FifthBits), its code dword s at the block's codes
   * (qRows8CodesAt) + 8·(j mod 8) + codeDwordAt(s), the second group 8·rowBytes on.
   */
  template <QFmt F>
  SC_INT8_TILES_TARGET static void buildGroupTile(const uint8_t* W, int64_t K, int64_t n0, int rows, Int8Tile& t) {
    constexpr QFmt R = qRowFormat(F);
    constexpr int blockBytes = (qRows8(F) ? kRows8 : 1) * qBlockBytes(F);
    const int64_t blocks = K / 32, rowBytes = blocks * qBlockBytes(F);
    t.size(blocks);
    const __mmask16 live = static_cast<__mmask16>((1u << rows) - 1);  // rows past N: nothing read, scale 0
    // Each row's byte offset (from the block) of its scale's dword and its code dword 0.
    __m512i scaleAt, codeAt;
    const uint8_t* first;
    if constexpr (qRows8(F)) {
      const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
      const __m512i group = _mm512_mask_blend_epi32(0xff00, _mm512_setzero_si512(), _mm512_set1_epi32(static_cast<int>(kRows8 * rowBytes)));
      scaleAt = _mm512_add_epi32(group, _mm512_slli_epi32(lane, 1));
      codeAt = _mm512_add_epi32(group, _mm512_add_epi32(_mm512_set1_epi32(qRows8CodesAt(F)), _mm512_slli_epi32(lane, 3)));
      first = W + n0 / kRows8 * kRows8 * rowBytes;
    } else {
      scaleAt = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(static_cast<int>(rowBytes)));
      codeAt = scaleAt;
      first = W + n0 * rowBytes;
    }
    const __m512i low4 = _mm512_set1_epi8(15);
    for (int64_t b = 0; b < blocks; b++) {
      const uint8_t* block = first + b * blockBytes;
      uint8_t* tile = t.codes + b * kBlockTileBytes;
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(rowDwords(live, scaleAt, block)));  // the fp16 in each dword's low half
      _mm512_storeu_ps(t.scales.data() + 2 * b * kTileRows, d);
      _mm512_storeu_ps(t.scales.data() + (2 * b + 1) * kTileRows, d);
      if constexpr (R == QFmt::Q8_0) {
        for (int s = 0; s < 8; s++) _mm512_store_si512(tile + 64 * s, _mm512_xor_si512(rowDwords(live, codeAt, block + codeDwordAt<F>(s)), _mm512_set1_epi8(static_cast<char>(0x80))));
      } else {
        const __m512i centre = _mm512_set1_epi8(R == QFmt::Q5_0 ? 112 : 120);
        const __m512i high = R != QFmt::Q5_0 ? _mm512_setzero_si512()
                             : qRows8(F)     ? rows8FifthBits(block, kRows8 * rowBytes, rows > kRows8)
                                             : rowDwords(live, _mm512_add_epi32(scaleAt, _mm512_set1_epi32(2)), block);  // the word past the scale
        for (int s = 0; s < 4; s++) {
          const __m512i q = rowDwords(live, codeAt, block + codeDwordAt<F>(s));
          __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
          if constexpr (R == QFmt::Q5_0) {
            lo = _mm512_or_si512(lo, fifthBits(high, s));
            hi = _mm512_or_si512(hi, fifthBits(high, s + 4));
          }
          _mm512_store_si512(tile + 64 * s, _mm512_add_epi8(lo, centre));
          _mm512_store_si512(tile + 64 * (s + 4), _mm512_add_epi8(hi, centre));
        }
      }
    }
  }

  /**
   * y[m·N + n0 + j] (j < width) for R rows of x from row m0: the tile against each row's blocks, each
   * sum started at −128·Σq_x, times a·d_x (+ b·d_x·Σq_x for the affine formats) into one accumulator a row.
   */
  template <QFmt F, int R>
  SC_INT8_TILES_TARGET static void tileRows(const Int8Tile& t, int64_t blocks, const int8_t* xq, const float* xd, const XSums& xs, int64_t K, int64_t m0,
                                     float* y, int64_t N, int64_t n0, int width, const float* bias) {
    __m512 acc[R];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
      const uint8_t* w = t.codes + b * kBlockTileBytes;
      const float* a = t.scales.data() + 2 * b * kTileRows;
      for (int r = 0; r < R; r++) {
        const int64_t m = m0 + r, mb = m * blocks + b;
        const int32_t* x4 = reinterpret_cast<const int32_t*>(xq + m * K + 32 * b);
        const __m512 dx = _mm512_set1_ps(xd[mb]);
        if constexpr (qScalePer16(F)) {
          __m512i lo = _mm512_set1_epi32(xs.start[2 * mb]), hi = _mm512_set1_epi32(xs.start[2 * mb + 1]);
          for (int s = 0; s < 4; s++) lo = _mm512_dpbusd_epi32(lo, _mm512_load_si512(w + 64 * s), _mm512_set1_epi32(x4[s]));
          for (int s = 4; s < 8; s++) hi = _mm512_dpbusd_epi32(hi, _mm512_load_si512(w + 64 * s), _mm512_set1_epi32(x4[s]));
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), _mm512_mul_ps(_mm512_loadu_ps(a), dx), acc[r]);
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), _mm512_mul_ps(_mm512_loadu_ps(a + kTileRows), dx), acc[r]);
        } else {
          // Two chains of four (exact in int32, so their order is free): half the latency a row waits on.
          __m512i even = _mm512_set1_epi32(xs.start[mb]), odd = _mm512_setzero_si512();
          for (int s = 0; s < 8; s += 2) {
            even = _mm512_dpbusd_epi32(even, _mm512_load_si512(w + 64 * s), _mm512_set1_epi32(x4[s]));
            odd = _mm512_dpbusd_epi32(odd, _mm512_load_si512(w + 64 * (s + 1)), _mm512_set1_epi32(x4[s + 1]));
          }
          const __m512i sum = _mm512_add_epi32(even, odd);
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(_mm512_loadu_ps(a), dx), acc[r]);
          if constexpr (qHasOffset(F)) {
            acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(t.offsets.data() + 2 * b * kTileRows), _mm512_set1_ps(xs.dsum[mb]), acc[r]);
          }
        }
      }
    }
    const __mmask16 keep = static_cast<__mmask16>((1u << width) - 1);
    const __m512 b16 = bias ? _mm512_maskz_loadu_ps(keep, bias + n0) : _mm512_setzero_ps();
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + (m0 + r) * N + n0, keep, _mm512_add_ps(acc[r], b16));
  }
};

}  // namespace

bool quantTilesInt8Handles(QFmt f) { return qIntegerCodes(f); }

void quantTilesInt8(QFmt f, const int8_t* xq, const float* xd, const float* xs, int64_t M, const uint8_t* W, int64_t N, int64_t K, const float* bias, float* y) {
  tiles_int8::productOf<Avx512Vnni>(f, xq, xd, xs, M, W, N, K, bias, y);
}

}  // namespace sc

#elif !defined(__aarch64__)  // arm64: quant_tiles_int8_neon.cc
namespace sc {
bool quantTilesInt8Handles(QFmt) { return false; }
void quantTilesInt8(QFmt, const int8_t*, const float*, const float*, int64_t, const uint8_t*, int64_t, int64_t, const float*, float*) {}
}  // namespace sc
#endif
