// The integer tiles' parts that are no ISA's (quant_tiles_int8.cc has the layout and the arithmetic):
// the tile's storage, x's sums, the loops over rows of x and tiles of W, and the switch over formats.
// Each ISA's file (quant_tiles_int8.cc: AVX512-VNNI; quant_tiles_int8_neon.cc: DotProd) passes an
// `Isa` with
//   static constexpr int kCentre;      // added to unpackBlock's int8 codes in its tiles (128: u8 codes; 0: s8, no starts)
//   static constexpr int kRowsPerPass; // rows of x one pass over a tile holds
//   static constexpr bool kReadsRows8; // whether buildTile reads the interleaved formats (quant_blocks.h)
//   template <QFmt F> static void buildTile(const uint8_t* W, int64_t K, int64_t n0, int rows, Int8Tile& t);
//   template <QFmt F, int R> static void tileRows(const Int8Tile& t, int64_t blocks, const int8_t* xq, const float* xd,
//       const XSums& xs, int64_t K, int64_t m0, float* y, int64_t N, int64_t n0, int width, const float* bias);
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "quant_blocks.h"
#include "threads.h"

namespace sc::tiles_int8 {

constexpr int kTileRows = 16;
constexpr int kBlockTileBytes = 32 * kTileRows;  // one block of 32 of the 16 rows: 8 steps × 64 bytes

/** A thread's tile: codes (from a 64-byte boundary of `bytes`, for the loads), scales and offsets per half block of 16. */
struct Int8Tile {
  std::vector<uint8_t> bytes;
  uint8_t* codes = nullptr;    // blocks × kBlockTileBytes
  std::vector<float> scales;   // [block][half][row]: blocks × 2 × 16
  std::vector<float> offsets;  // the same, for the affine formats

  void size(int64_t blocks) {
    const size_t n = static_cast<size_t>(blocks * kBlockTileBytes);
    if (bytes.size() < n + 64) bytes.resize(n + 64);
    codes = bytes.data() + (64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64;
    scales.assign(static_cast<size_t>(blocks * 2 * kTileRows), 0.0f);
    offsets.assign(static_cast<size_t>(blocks * 2 * kTileRows), 0.0f);
  }
};

/** Block b (the 32-weight block p of its format block) of the tile's rows: each half's scale a and, for the affine formats, offset b. */
template <QFmt F, int H>
void keepScales(Int8Tile& t, int64_t b, int p, int rows, const float (&a)[kTileRows][H], const float (&off)[kTileRows][H]) {
  for (int h = 0; h < 2; h++) {
    for (int j = 0; j < rows; j++) {
      t.scales[static_cast<size_t>((2 * b + h) * kTileRows + j)] = a[j][2 * p + h];
      if constexpr (qHasOffset(F)) t.offsets[static_cast<size_t>((2 * b + h) * kTileRows + j)] = off[j][2 * p + h];
    }
  }
}

/** x's side of the tiles: per block of 32, −centre·Σq (per 16 where the format scales per 16) and d·Σq. */
struct XSums {
  std::vector<int32_t> start;  // [m][block] (per 16: [m][block][half])
  std::vector<float> dsum;     // [m][block]: d·Σq over the 32 (the affine formats' offsets multiply it)
};

template <QFmt F>
XSums xSums(const int8_t* xq, const float* xs, int64_t M, int64_t K, int centre) {
  constexpr int part = qScalePer16(F) ? 16 : 32;
  const int64_t blocks = M * K / 32;
  XSums out;
  // A centre of 0 (codes taken signed) leaves every start 0: none is read.
  if (centre != 0) out.start.resize(static_cast<size_t>(M * K / part));
  for (int64_t i = 0; i < static_cast<int64_t>(out.start.size()); i++) {
    int32_t sum = 0;
    for (int j = 0; j < part; j++) sum += xq[part * i + j];
    out.start[static_cast<size_t>(i)] = -centre * sum;
  }
  if constexpr (qHasOffset(F)) {
    out.dsum.resize(static_cast<size_t>(blocks));
    for (int64_t b = 0; b < blocks; b++) out.dsum[static_cast<size_t>(b)] = xs[2 * b] + xs[2 * b + 1];
  }
  return out;
}

/** The last rows of x, fewer than a pass: tileRows at their count (R down to 1). */
template <class Isa, QFmt F, int R>
void lastRows(int rows, const Int8Tile& t, int64_t blocks, const int8_t* xq, const float* xd, const XSums& xs, int64_t K, int64_t m0, float* y,
              int64_t N, int64_t n0, int width, const float* bias) {
  if constexpr (R > 0) {
    if (rows == R) return Isa::template tileRows<F, R>(t, blocks, xq, xd, xs, K, m0, y, N, n0, width, bias);
    lastRows<Isa, F, R - 1>(rows, t, blocks, xq, xd, xs, K, m0, y, N, n0, width, bias);
  }
}

/**
 * The next tile's rows into L2 while this one multiplies: a tile's build reads its 16 rows side by side (a
 * dword of each row a step), which the stream prefetchers do not follow, so from memory it waited on
 * every line (a 32-row 1536×576 Q4_0 product 1.5× slower with W cold than hot). The 16 rows are one
 * contiguous span of W.
 */
inline void prefetchRows(const uint8_t* from, int64_t bytes) {
  for (int64_t at = 0; at < bytes; at += 64) __builtin_prefetch(from + at, 0, 2);
}

/** Products per thread before the tiles split over the threads (as the fp32 tiles': kTileGrainFlops there). */
constexpr int64_t kGrainProducts = 1'000'000;

template <class Isa, QFmt F>
void product(const int8_t* xq, const float* xd, const float* xsums, int64_t M, const uint8_t* W, int64_t N, int64_t K, const float* bias, float* y) {
  constexpr int P = Isa::kRowsPerPass;
  const int64_t blocks = K / 32, tiles = (N + kTileRows - 1) / kTileRows, rowBytes = K / qBlockWeights(F) * qBlockBytes(F);
  const XSums xs = xSums<F>(xq, xsums, M, K, Isa::kCentre);
  const int64_t grain = std::max<int64_t>(1, kGrainProducts / std::max<int64_t>(1, M * kTileRows * K));
  parallelRange(tiles, grain, [&](int64_t lo, int64_t hi) {
    thread_local Int8Tile tile;
    for (int64_t i = lo; i < hi; i++) {
      const int64_t n0 = i * kTileRows;
      const int width = static_cast<int>(std::min<int64_t>(kTileRows, N - n0));
      Isa::template buildTile<F>(W, K, n0, width, tile);
      // The next tile's span, a share before each pass of rows of x (all at once, the lines outrun the misses a core tracks).
      const int64_t nextBytes = i + 1 < hi ? std::min<int64_t>(kTileRows, N - n0 - kTileRows) * rowBytes : 0;
      const uint8_t* next = nextBytes > 0 ? W + (n0 + kTileRows) * rowBytes : W;
      const int64_t share = (nextBytes / ((M + P - 1) / P) + 63) / 64 * 64;
      int64_t sent = 0;
      int64_t m = 0;
      for (; m + P <= M; m += P, sent += share) {
        prefetchRows(next + sent, std::min(share, nextBytes - sent));
        Isa::template tileRows<F, P>(tile, blocks, xq, xd, xs, K, m, y, N, n0, width, bias);
      }
      prefetchRows(next + sent, nextBytes - sent);
      lastRows<Isa, F, P - 1>(static_cast<int>(M - m), tile, blocks, xq, xd, xs, K, m, y, N, n0, width, bias);
    }
  });
}

/** quantTilesInt8 (quant_tiles_int8.h) on Isa: every format with integer codes. */
template <class Isa>
void productOf(QFmt f, const int8_t* xq, const float* xd, const float* xs, int64_t M, const uint8_t* W, int64_t N, int64_t K, const float* bias,
               float* y) {
  switch (f) {
    case QFmt::Q8_0: return product<Isa, QFmt::Q8_0>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q4_0: return product<Isa, QFmt::Q4_0>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q4_1: return product<Isa, QFmt::Q4_1>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q5_0: return product<Isa, QFmt::Q5_0>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q5_1: return product<Isa, QFmt::Q5_1>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q4_K: return product<Isa, QFmt::Q4_K>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q5_K: return product<Isa, QFmt::Q5_K>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q6_K: return product<Isa, QFmt::Q6_K>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Mlx4: return product<Isa, QFmt::Mlx4>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Mlx8: return product<Isa, QFmt::Mlx8>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Mlx4F16: return product<Isa, QFmt::Mlx4F16>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Mlx8F16: return product<Isa, QFmt::Mlx8F16>(xq, xd, xs, M, W, N, K, bias, y);
    case QFmt::Q4_0x8:
      if constexpr (Isa::kReadsRows8) return product<Isa, QFmt::Q4_0x8>(xq, xd, xs, M, W, N, K, bias, y);
      return;
    case QFmt::Q8_0x8:
      if constexpr (Isa::kReadsRows8) return product<Isa, QFmt::Q8_0x8>(xq, xd, xs, M, W, N, K, bias, y);
      return;
    case QFmt::Q5_0x8:
      if constexpr (Isa::kReadsRows8) return product<Isa, QFmt::Q5_0x8>(xq, xd, xs, M, W, N, K, bias, y);
      return;
    case QFmt::Q4_Kx8:
      if constexpr (Isa::kReadsRows8) return product<Isa, QFmt::Q4_Kx8>(xq, xd, xs, M, W, N, K, bias, y);
      return;
    case QFmt::Q6_Kx8:
      if constexpr (Isa::kReadsRows8) return product<Isa, QFmt::Q6_Kx8>(xq, xd, xs, M, W, N, K, bias, y);
      return;
    default: return;
  }
}

}  // namespace sc::tiles_int8
