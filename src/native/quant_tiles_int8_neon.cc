// The integer tiles (quant_tiles_int8.cc has the layout and the arithmetic) on arm64 with DotProd
// (Armv8.2: Apple M1, Graviton 2): the tile holds unpackBlock's int8 codes as they are (SDOT
// multiplies signed by signed, so no centre: the sums start at 0), gathered row by row as dwords;
// each vdotq_s32 multiplies four codes of 4 rows with four codes of x broadcast, four of them a step
// for the tile's 16 rows. The same float arithmetic as the AVX512-VNNI tiles: y[m, n] =
// Σ_b (float(sum_b)·(a_b·d_x,b) + b_b·(d_x·Σq_x)_b), fused multiply-adds in block order.
// Compiled for armv8.2-a+dotprod by a target attribute only; quant_linear.cc calls it where
// cpuFeatures().dotprod.
#include "quant_tiles_int8.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "quant_tiles_int8_body.h"

namespace sc {
namespace {

#define SC_QDOT_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#include "quant_unpack_neon.h"

using tiles_int8::Int8Tile;
using tiles_int8::XSums;
using tiles_int8::kBlockTileBytes;
using tiles_int8::kTileRows;

struct NeonDot {
  static constexpr int kCentre = 0;       // SDOT takes the signed codes as they are
  static constexpr int kRowsPerPass = 4;  // four accumulators (16 lanes) a row of x: 16 of the 32 registers
  static constexpr bool kReadsRows8 = false;  // the interleaved formats are made only where AVX512-VNNI reads them (quant_rows8.h)

  /** Rows [n0, n0 + rows) of W (rows ≤ 16) into the tile: each format block of the 16 rows unpacked, then dword s of each 32 moved to step s. */
  template <QFmt F>
  SC_QDOT_TARGET static void buildTile(const uint8_t* W, int64_t K, int64_t n0, int rows, Int8Tile& t) {
    constexpr int BW = qBlockWeights(F);
    const int64_t units = K / BW, rowBytes = units * qBlockBytes(F);
    t.size(K / 32);
    alignas(16) int8_t codes[kTileRows][BW] = {};
    float a[kTileRows][BW / 16] = {}, off[kTileRows][BW / 16] = {};
    for (int64_t u = 0; u < units; u++) {
      for (int j = 0; j < rows; j++) unpackBlock<F, Unpack>(W + (n0 + j) * rowBytes + u * qBlockBytes(F), codes[j], a[j], off[j]);
      for (int p = 0; p < BW / 32; p++) {
        const int64_t b = u * (BW / 32) + p;
        uint8_t* tile = t.codes + b * kBlockTileBytes;
        for (int s = 0; s < 8; s++) {
          for (int j = 0; j < kTileRows; j++) std::memcpy(tile + 64 * s + 4 * j, &codes[j][32 * p + 4 * s], 4);
        }
        tiles_int8::keepScales<F>(t, b, p, rows, a, off);
      }
    }
  }

  /** Steps [s0, s1) of a block: each a broadcast dword of x against the tile's four vectors of that step. */
  SC_QDOT_TARGET static inline void steps(int32x4_t (&sum)[4], const uint8_t* w, const int32_t* x4, int s0, int s1) {
    for (int s = s0; s < s1; s++) {
      const int8x16_t xv = vreinterpretq_s8_s32(vdupq_n_s32(x4[s]));
      for (int q = 0; q < 4; q++) sum[q] = vdotq_s32(sum[q], vld1q_s8(reinterpret_cast<const int8_t*>(w + 64 * s + 16 * q)), xv);
    }
  }

  /** acc[q] += float(sum[q])·(a[4q..]·d_x), the tile's 16 rows four at a time. */
  SC_QDOT_TARGET static inline void scaleAdd(float32x4_t (&acc)[4], const int32x4_t (&sum)[4], const float* a, float32x4_t dx) {
    for (int q = 0; q < 4; q++) acc[q] = vfmaq_f32(acc[q], vcvtq_f32_s32(sum[q]), vmulq_f32(vld1q_f32(a + 4 * q), dx));
  }

  /** y[m·N + n0 + j] (j < width) for R rows of x from row m0 (quant_tiles_int8.cc's tileRows, four lanes at a time). */
  template <QFmt F, int R>
  SC_QDOT_TARGET static void tileRows(const Int8Tile& t, int64_t blocks, const int8_t* xq, const float* xd, const XSums& xs, int64_t K, int64_t m0,
                                      float* y, int64_t N, int64_t n0, int width, const float* bias) {
    float32x4_t acc[R][4];
    for (int r = 0; r < R; r++) for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < blocks; b++) {
      const uint8_t* w = t.codes + b * kBlockTileBytes;
      const float* a = t.scales.data() + 2 * b * kTileRows;
      for (int r = 0; r < R; r++) {
        const int64_t m = m0 + r, mb = m * blocks + b;
        int32_t x4[8];
        std::memcpy(x4, xq + m * K + 32 * b, 32);
        const float32x4_t dx = vdupq_n_f32(xd[mb]);
        if constexpr (qScalePer16(F)) {
          int32x4_t lo[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
          int32x4_t hi[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
          steps(lo, w, x4, 0, 4);
          steps(hi, w, x4, 4, 8);
          scaleAdd(acc[r], lo, a, dx);
          scaleAdd(acc[r], hi, a + kTileRows, dx);
        } else {
          int32x4_t sum[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
          steps(sum, w, x4, 0, 8);
          scaleAdd(acc[r], sum, a, dx);
          if constexpr (qHasOffset(F)) {
            const float32x4_t ds = vdupq_n_f32(xs.dsum[mb]);
            const float* off = t.offsets.data() + 2 * b * kTileRows;
            for (int q = 0; q < 4; q++) acc[r][q] = vfmaq_f32(acc[r][q], vld1q_f32(off + 4 * q), ds);
          }
        }
      }
    }
    for (int r = 0; r < R; r++) {
      alignas(16) float out[kTileRows];
      for (int q = 0; q < 4; q++) vst1q_f32(out + 4 * q, acc[r][q]);
      float* row = y + (m0 + r) * N + n0;
      for (int j = 0; j < width; j++) row[j] = out[j] + (bias ? bias[n0 + j] : 0.0f);
    }
  }
};

#undef SC_QDOT_TARGET

}  // namespace

bool quantTilesInt8Handles(QFmt f) { return qIntegerCodes(f) && !qRows8(f); }

void quantTilesInt8(QFmt f, const int8_t* xq, const float* xd, const float* xs, int64_t M, const uint8_t* W, int64_t N, int64_t K, const float* bias, float* y) {
  tiles_int8::productOf<NeonDot>(f, xq, xd, xs, M, W, N, K, bias, y);
}

}  // namespace sc
#endif
